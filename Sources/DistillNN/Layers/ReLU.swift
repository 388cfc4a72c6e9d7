import DistillCore

/// The rectifier, `y = max(x, 0)`; backward `dx = dy * (y > 0)`. Any shape.
public final class ReLU: Layer {
    public var computesInputGradient = true
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])

    public init() {}

    public var descriptor: String { "relu" }
    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        output.resize(to: input.shape)
        let x = SendablePointer(input.pointer), y = SendablePointer(output.pointer)
        let zero = Float8.zero
        elementwise(input.count, vector: { i in
            let v = load8(x.pointer + i)
            store8(v.replacing(with: zero, where: v .< zero), y.pointer + i)
        },
                    scalar: { i in y[i] = max(x[i], 0) })
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        inputGradient.resize(to: outputGradient.shape)
        let y = SendablePointer(output.pointer), dy = SendablePointer(outputGradient.pointer)
        let dx = SendablePointer(inputGradient.pointer)
        let zero = Float8.zero
        elementwise(outputGradient.count, vector: { i in
            let g = load8(dy.pointer + i)
            store8(g.replacing(with: zero, where: load8(y.pointer + i) .<= zero), dx.pointer + i)
        }, scalar: { i in dx[i] = y[i] > 0 ? dy[i] : 0 })
        return inputGradient
    }
}
