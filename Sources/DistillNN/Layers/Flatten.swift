import DistillCore

/// Flattens every dimension after the batch: `[N, d1, d2, ...]` to `[N, d1 * d2 * ...]`.
/// A view of the same storage in both directions (no copy), unless the input is channel-major.
public final class Flatten: Layer {
    public var computesInputGradient = true
    /// Whether the last forward pass's input `[N, C, ...]` was laid out `[C, N, ...]` in memory
    /// (the layout a `Sequential` passes after a convolution that hands over channel-major
    /// activations): the forward pass then copies it into NCHW order, and the backward pass copies
    /// the gradient back.
    private var inputIsChannelMajor = false
    private var inputShape: [Int] = []
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])

    public init() {}

    public var descriptor: String { "flatten" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard let n = inputShape.first else {
            throw ArchitectureError("flatten needs a batch dimension")
        }
        return [n, inputShape.dropFirst().reduce(1, *)]
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        forward(input, mode: mode, layout: .nchw)
    }

    public func forward(_ input: Tensor, mode: Mode, layout: ActivationLayout) -> Tensor {
        inputIsChannelMajor = layout.inputIsChannelMajor
        if inputIsChannelMajor {
            inputShape = input.shape
            let n = input.shape[0]
            let c = input.shape.count > 1 ? input.shape[1] : 1
            if output.storage === input.storage { output = Tensor(zeros: [0]) }  // was a view
            output.resize(to: [n, input.count / max(n, 1)])
            transpose(
                input.pointer, into: output.pointer, blocks: (c, n),
                blockSize: input.count / max(n * c, 1))
            return output
        }
        // Rebuild the view only when the input changes, so steady-state steps allocate nothing.
        if input.storage !== output.storage || input.shape != inputShape {
            inputShape = input.shape
            output = input.reshaped([input.shape[0], input.count / max(input.shape[0], 1)])
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        if inputIsChannelMajor {
            let n = inputShape[0]
            let c = inputShape.count > 1 ? inputShape[1] : 1
            if inputGradient.storage === outputGradient.storage {
                inputGradient = Tensor(zeros: [0])
            }
            inputGradient.resize(to: inputShape)
            transpose(
                outputGradient.pointer, into: inputGradient.pointer, blocks: (n, c),
                blockSize: outputGradient.count / max(n * c, 1))
            return inputGradient
        }
        if outputGradient.storage !== inputGradient.storage || inputGradient.shape != inputShape {
            inputGradient = outputGradient.reshaped(inputShape)
        }
        return inputGradient
    }
}

/// Copies `[rows, columns]` blocks of `blockSize` floats into `[columns, rows]` order.
private func transpose(
    _ from: UnsafePointer<Float>, into to: UnsafeMutablePointer<Float>,
    blocks: (rows: Int, columns: Int), blockSize: Int
) {
    let src = SendablePointer(UnsafeMutablePointer(mutating: from))
    let dst = SendablePointer(to)
    let (rows, columns) = blocks
    parallelFor(columns, costPerItem: rows * blockSize) { range in
        for column in range {
            for row in 0..<rows {
                (dst.pointer + (column * rows + row) * blockSize)
                    .update(
                        from: src.pointer + (row * columns + column) * blockSize, count: blockSize)
            }
        }
    }
}
