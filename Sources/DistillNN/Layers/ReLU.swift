import DistillCore

/// The rectifier, `y = max(x, 0)`; backward `dx = dy * (y > 0)`. Any shape. NaN as in PyTorch: a
/// NaN input gives a NaN output, which passes its gradient.
public final class ReLU: Layer {
    public var computesInputGradient = true
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])

    public init() {}

    public var descriptor: String { "relu" }
    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        output.resize(to: input.shape)
        elementwise(input.count, Rectify(x: input.pointer, y: output.pointer))
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        inputGradient.resize(to: outputGradient.shape)
        elementwise(
            outputGradient.count,
            GateGradient(
                y: output.pointer, dy: outputGradient.pointer,
                dx: inputGradient.pointer))
        return inputGradient
    }
}

/// `y = max(x, 0)`, NaN kept (as PyTorch's `relu`).
private struct Rectify: ElementwiseKernel {
    let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>

    @inline(__always) func eight(at i: Int) {
        let v = load8(x + i)
        store8(zeroing(v, where: v .< 0), y + i)
    }

    @inline(__always) func one(at i: Int) { y[i] = x[i] < 0 ? 0 : x[i] }
}

/// `dx = 0` where the output is <= 0, else `dy` (so a NaN output passes its gradient, as PyTorch's
/// `threshold_backward`).
private struct GateGradient: ElementwiseKernel {
    let y: UnsafeMutablePointer<Float>, dy: UnsafeMutablePointer<Float>,
        dx: UnsafeMutablePointer<Float>

    @inline(__always) func eight(at i: Int) {
        store8(zeroing(load8(dy + i), where: load8(y + i) .<= 0), dx + i)
    }

    @inline(__always) func one(at i: Int) { dx[i] = y[i] <= 0 ? 0 : dy[i] }
}
