import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Gaussian error linear unit, as PyTorch's `nn.GELU`. Any shape.
///
/// - `.exact`: `y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`, `dy/dx = Phi(x) + x phi(x)` with
///   `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`.
/// - `.tanh` (`approximate="tanh"`): `y = x (1 + tanh(u)) / 2` with
///   `u = sqrt(2 / pi) (x + 0.044715 x^3)`, `dy/dx = (1 + tanh u) / 2 + x (1 - tanh^2 u) u' / 2`,
///   `u' = sqrt(2 / pi) (1 + 3 * 0.044715 x^2)`.
///
/// D. Hendrycks, K. Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415.
public final class GELU: Layer {
    public enum Approximation: String, Sendable { case exact, tanh }

    public let approximation: Approximation
    public var computesInputGradient = true
    private var input = Tensor(zeros: [0])
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])

    public init(approximation: Approximation = .exact) { self.approximation = approximation }

    public var descriptor: String { approximation == .exact ? "gelu" : "gelu:tanh" }
    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    /// sqrt(2 / pi), the tanh form's scale.
    static let tanhScale = Float((2 / Double.pi).squareRoot())
    /// The tanh form's cubic coefficient.
    static let cubic: Float = 0.044715

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        output.resize(to: input.shape)
        if mode == .training { self.input = input }
        let x = SendablePointer(input.pointer)
        let y = SendablePointer(output.pointer)
        let approximation = self.approximation
        parallelFor(input.count, costPerItem: 16) { range in
            for i in range {
                let v = x[i]
                switch approximation {
                case .exact: y[i] = 0.5 * v * (1 + erff(v * GELU.invSqrt2))
                case .tanh:
                    y[i] = 0.5 * v * (1 + tanhf(GELU.tanhScale * (v + GELU.cubic * v * v * v)))
                }
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        inputGradient.resize(to: outputGradient.shape)
        let x = SendablePointer(input.pointer)
        let dy = SendablePointer(outputGradient.pointer)
        let dx = SendablePointer(inputGradient.pointer)
        let approximation = self.approximation
        parallelFor(outputGradient.count, costPerItem: 24) { range in
            for i in range {
                let v = x[i]
                switch approximation {
                case .exact:
                    let cdf = 0.5 * (1 + erff(v * GELU.invSqrt2))
                    dx[i] = dy[i] * (cdf + v * GELU.invSqrt2Pi * expf(-0.5 * v * v))
                case .tanh:
                    let v2 = v * v
                    let t = tanhf(GELU.tanhScale * (v + GELU.cubic * v2 * v))
                    let du = GELU.tanhScale * (1 + 3 * GELU.cubic * v2)
                    dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du)
                }
            }
        }
        return inputGradient
    }

    /// 1 / sqrt(2) and 1 / sqrt(2 pi), the exact form's constants.
    static let invSqrt2 = Float(0.5.squareRoot())
    static let invSqrt2Pi = Float(1 / (2 * Double.pi).squareRoot())
}
