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
        let x = input.pointer
        let y = output.pointer
        switch approximation {
        case .exact:
            for i in 0..<input.count {
                y[i] = 0.5 * x[i] * (1 + erff(x[i] * Float(0.5).squareRoot()))
            }
        case .tanh:
            for i in 0..<input.count {
                let u = GELU.tanhScale * (x[i] + GELU.cubic * x[i] * x[i] * x[i])
                y[i] = 0.5 * x[i] * (1 + tanhf(u))
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        inputGradient.resize(to: outputGradient.shape)
        let x = input.pointer
        let dy = outputGradient.pointer
        let dx = inputGradient.pointer
        switch approximation {
        case .exact:
            let invSqrt2Pi = Float(1 / (2 * Double.pi).squareRoot())
            for i in 0..<outputGradient.count {
                let cdf = 0.5 * (1 + erff(x[i] * Float(0.5).squareRoot()))
                let pdf = invSqrt2Pi * expf(-0.5 * x[i] * x[i])
                dx[i] = dy[i] * (cdf + x[i] * pdf)
            }
        case .tanh:
            for i in 0..<outputGradient.count {
                let x2 = x[i] * x[i]
                let t = tanhf(GELU.tanhScale * (x[i] + GELU.cubic * x2 * x[i]))
                let du = GELU.tanhScale * (1 + 3 * GELU.cubic * x2)
                dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * x[i] * (1 - t * t) * du)
            }
        }
        return inputGradient
    }
}
