import DistillCore

/// Layer normalisation over the last dimension, as PyTorch's `nn.LayerNorm(dimension)`.
///
/// For each row `x` of `dimension` values (any leading shape):
///
///     mean = sum(x) / C,   var = sum((x - mean)^2) / C   (biased, as PyTorch)
///     rstd = 1 / sqrt(var + epsilon),   xhat = (x - mean) * rstd
///     y = weight * xhat + bias
///
/// with `weight` (gamma, ones) and `bias` (beta, zeros) of shape `[dimension]`, `epsilon` 1e-5.
/// Backward, with `g = dy * weight` per row:
///
///     dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
///     dweight += sum over rows of dy * xhat,   dbias += sum over rows of dy
///
/// The forward pass keeps each row's `mean` and `rstd` for the backward pass (as llm.c's
/// `layernorm_forward`).
public final class LayerNorm: Layer {
    public let dimension: Int
    public let epsilon: Float
    public let weight: Parameter
    public let bias: Parameter
    public var computesInputGradient = true
    private var input = Tensor(zeros: [0])
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])
    private var mean: [Float] = []  // [rows]
    private var rstd: [Float] = []  // [rows]

    public init(dimension: Int, epsilon: Float = 1e-5) {
        precondition(dimension >= 1 && epsilon > 0)
        self.dimension = dimension
        self.epsilon = epsilon
        let ones = Tensor(zeros: [dimension])
        ones.fill(1)
        weight = Parameter(name: "weight", value: ones, isWeight: false)
        bias = Parameter(name: "bias", value: Tensor(zeros: [dimension]), isWeight: false)
    }

    public var parameters: [Parameter] { [weight, bias] }
    public var descriptor: String { "layernorm:\(dimension)" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.last == dimension else {
            throw ArchitectureError("\(descriptor) expects [..., \(dimension)], got \(inputShape)")
        }
        return inputShape
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        let c = dimension
        let rows = input.count / c
        output.resize(to: input.shape)
        if mode == .training {
            self.input = input
            if mean.count != rows {
                (mean, rstd) = (
                    [Float](repeating: 0, count: rows), [Float](repeating: 0, count: rows)
                )
            }
        }
        let w = weight.value.pointer
        let b = bias.value.pointer
        for r in 0..<rows {
            let x = input.pointer + r * c
            let y = output.pointer + r * c
            var sum = 0.0
            for j in 0..<c { sum += Double(x[j]) }
            let m = Float(sum / Double(c))
            var squares = 0.0
            for j in 0..<c { squares += Double((x[j] - m) * (x[j] - m)) }
            let s = Float(1 / (squares / Double(c) + Double(epsilon)).squareRoot())
            for j in 0..<c { y[j] = (x[j] - m) * s * w[j] + b[j] }
            if mode == .training { (mean[r], rstd[r]) = (m, s) }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let c = dimension
        let rows = outputGradient.count / c
        let dw = weight.startAccumulating()
        let db = bias.startAccumulating()
        if computesInputGradient { inputGradient.resize(to: outputGradient.shape) }
        let w = weight.value.pointer
        for r in 0..<rows {
            let x = input.pointer + r * c
            let dy = outputGradient.pointer + r * c
            let (m, s) = (mean[r], rstd[r])
            var meanG = 0.0
            var meanGX = 0.0
            for j in 0..<c {
                let xhat = (x[j] - m) * s
                let g = dy[j] * w[j]
                meanG += Double(g)
                meanGX += Double(g * xhat)
                dw[j] += dy[j] * xhat
                db[j] += dy[j]
            }
            guard computesInputGradient else { continue }
            let (a, bb) = (Float(meanG / Double(c)), Float(meanGX / Double(c)))
            let dx = inputGradient.pointer + r * c
            for j in 0..<c {
                let xhat = (x[j] - m) * s
                dx[j] = s * (dy[j] * w[j] - a - xhat * bb)
            }
        }
        return inputGradient
    }
}
