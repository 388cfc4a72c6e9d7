import DistillCore

/// Flattens every dimension after the batch: `[N, d1, d2, ...]` to `[N, d1 * d2 * ...]`.
/// A view of the same storage in both directions (no copy).
public final class Flatten: Layer {
    public var computesInputGradient = true
    private var inputShape: [Int] = []
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])

    public init() {}

    public var descriptor: String { "flatten" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard let n = inputShape.first else { throw ArchitectureError("flatten needs a batch dimension") }
        return [n, inputShape.dropFirst().reduce(1, *)]
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        // Rebuild the view only when the input changes, so steady-state steps allocate nothing.
        if input.storage !== output.storage || input.shape != inputShape {
            inputShape = input.shape
            output = input.reshaped([input.shape[0], input.count / max(input.shape[0], 1)])
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        if outputGradient.storage !== inputGradient.storage || inputGradient.shape != inputShape {
            inputGradient = outputGradient.reshaped(inputShape)
        }
        return inputGradient
    }
}
