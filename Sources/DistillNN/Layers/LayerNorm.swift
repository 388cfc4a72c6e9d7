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
    private var statistics = Tensor(zeros: [0])  // [rows, 2]: each row's mean and rstd

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
        if mode == .training { self.input = input }
        if statistics.count != 2 * rows { statistics = Tensor(zeros: [rows, 2]) }
        let (x, y) = (SendablePointer(input.pointer), SendablePointer(output.pointer))
        let (w, b) = (SendablePointer(weight.value.pointer), SendablePointer(bias.value.pointer))
        let stats = SendablePointer(statistics.pointer)
        let epsilon = Double(self.epsilon)
        parallelFor(rows, costPerItem: 4 * c) { range in
            for r in range {
                let (xr, yr) = (x.pointer + r * c, y.pointer + r * c)
                var sum = 0.0
                for j in 0..<c { sum += Double(xr[j]) }
                let m = Float(sum / Double(c))
                var squares = 0.0
                for j in 0..<c { squares += Double((xr[j] - m) * (xr[j] - m)) }
                let s = Float(1 / (squares / Double(c) + epsilon).squareRoot())
                for j in 0..<c { yr[j] = (xr[j] - m) * s * w[j] + b[j] }
                (stats[2 * r], stats[2 * r + 1]) = (m, s)
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let c = dimension
        let rows = outputGradient.count / c
        let dw = weight.startAccumulating()
        let db = bias.startAccumulating()
        if computesInputGradient { inputGradient.resize(to: outputGradient.shape) }
        let (x, dy, stats) = (input.pointer, outputGradient.pointer, statistics.pointer)
        // The parameter gradients, summed over rows on one thread (a few passes over [rows, C]).
        for r in 0..<rows {
            let (xr, dyr, m, s) = (x + r * c, dy + r * c, stats[2 * r], stats[2 * r + 1])
            for j in 0..<c {
                dw[j] += dyr[j] * (xr[j] - m) * s
                db[j] += dyr[j]
            }
        }
        guard computesInputGradient else { return inputGradient }
        let (xs, dys, st) = (SendablePointer(x), SendablePointer(dy), SendablePointer(stats))
        let (w, dx) = (
            SendablePointer(weight.value.pointer), SendablePointer(inputGradient.pointer)
        )
        parallelFor(rows, costPerItem: 4 * c) { range in
            for r in range {
                let (xr, dyr, dxr) = (xs.pointer + r * c, dys.pointer + r * c, dx.pointer + r * c)
                let (m, s) = (st[2 * r], st[2 * r + 1])
                var meanG = 0.0
                var meanGX = 0.0
                for j in 0..<c {
                    let g = dyr[j] * w[j]
                    meanG += Double(g)
                    meanGX += Double(g * (xr[j] - m) * s)
                }
                let (a, bb) = (Float(meanG / Double(c)), Float(meanGX / Double(c)))
                for j in 0..<c { dxr[j] = s * (dyr[j] * w[j] - a - (xr[j] - m) * s * bb) }
            }
        }
        return inputGradient
    }
}
