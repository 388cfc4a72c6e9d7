import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Gaussian error linear unit, as PyTorch's `nn.GELU`. Any shape.
///
/// - `.exact`: `y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`, `dy/dx = Phi(x) + x phi(x)` with
///   `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`; `Phi` to 2.5e-7, eight lanes at a time (see
///   `normalCDF`).
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
        let (x, y) = (input.pointer, output.pointer)
        switch approximation {
        case .exact: elementwise(input.count, minimumParallel: 1 << 14, ExactForward(x: x, y: y))
        case .tanh: elementwise(input.count, minimumParallel: 1 << 14, TanhForward(x: x, y: y))
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        inputGradient.resize(to: outputGradient.shape)
        let (x, dy, dx) = (input.pointer, outputGradient.pointer, inputGradient.pointer)
        switch approximation {
        case .exact:
            elementwise(
                outputGradient.count, minimumParallel: 1 << 14,
                ExactBackward(x: x, dy: dy, dx: dx))
        case .tanh:
            elementwise(
                outputGradient.count, minimumParallel: 1 << 14,
                TanhBackward(x: x, dy: dy, dx: dx))
        }
        return inputGradient
    }

    /// `Phi(x)` and `phi(x)` for eight lanes. `Phi` from Abramowitz and Stegun's 7.1.26 for
    /// `erfc`, `|error| <= 1.5e-7` (the approximation PyTorch's vectorised CPU `erf` uses):
    /// `Phi(-|x|) = poly(t) exp(-x^2 / 2) / 2` with `t = 1 / (1 + 0.3275911 |x| / sqrt 2)`, and
    /// `Phi(|x|) = 1 - Phi(-|x|)`.
    @inline(__always)
    static func normalCDF(_ x: SIMD8<Float>) -> (cdf: SIMD8<Float>, density: SIMD8<Float>) {
        typealias V = SIMD8<Float>
        let magnitude = x.replacing(with: -x, where: x .< 0)
        let z = magnitude * 0.707_106_78  // |x| / sqrt 2
        let t = 1 / V(repeating: 1).addingProduct(z, V(repeating: 0.327_591_1))
        var poly = V(repeating: 1.061_405_429)
        poly = V(repeating: -1.453_152_027).addingProduct(poly, t)
        poly = V(repeating: 1.421_413_741).addingProduct(poly, t)
        poly = V(repeating: -0.284_496_736).addingProduct(poly, t)
        poly = V(repeating: 0.254_829_592).addingProduct(poly, t)
        let gaussian = fastExp(-0.5 * x * x)
        let tail = 0.5 * poly * t * gaussian
        // 1 / sqrt(2 pi)
        return (tail.replacing(with: 1 - tail, where: x .> 0), gaussian * 0.398_942_28)
    }
}

/// `y = x Phi(x)`.
private struct ExactForward: ElementwiseKernel {
    let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>

    @inline(__always) func eight(at i: Int) {
        let v = load8(x + i)
        store8(v * GELU.normalCDF(v).cdf, y + i)
    }

    @inline(__always) func one(at i: Int) {
        y[i] = x[i] * GELU.normalCDF(Float8(repeating: x[i])).cdf[0]
    }
}

/// `dx = dy (Phi(x) + x phi(x))`.
private struct ExactBackward: ElementwiseKernel {
    let x: UnsafeMutablePointer<Float>, dy: UnsafeMutablePointer<Float>,
        dx: UnsafeMutablePointer<Float>

    @inline(__always) func eight(at i: Int) {
        let v = load8(x + i)
        let (cdf, density) = GELU.normalCDF(v)
        store8(load8(dy + i) * cdf.addingProduct(v, density), dx + i)
    }

    @inline(__always) func one(at i: Int) {
        let (cdf, density) = GELU.normalCDF(Float8(repeating: x[i]))
        dx[i] = dy[i] * (cdf[0] + x[i] * density[0])
    }
}

/// `y = x (1 + tanh u) / 2`, element by element (`tanhf`).
private struct TanhForward: ElementwiseKernel {
    let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>

    @inline(__always) func eight(at i: Int) { for k in i..<(i + 8) { one(at: k) } }

    @inline(__always) func one(at i: Int) {
        let v = x[i]
        y[i] = 0.5 * v * (1 + tanhf(GELU.tanhScale * (v + GELU.cubic * v * v * v)))
    }
}

/// `dx = dy ((1 + tanh u) / 2 + x (1 - tanh^2 u) u' / 2)`, element by element.
private struct TanhBackward: ElementwiseKernel {
    let x: UnsafeMutablePointer<Float>, dy: UnsafeMutablePointer<Float>,
        dx: UnsafeMutablePointer<Float>

    @inline(__always) func eight(at i: Int) { for k in i..<(i + 8) { one(at: k) } }

    @inline(__always) func one(at i: Int) {
        let v = x[i]
        let v2 = v * v
        let t = tanhf(GELU.tanhScale * (v + GELU.cubic * v2 * v))
        let du = GELU.tanhScale * (1 + 3 * GELU.cubic * v2)
        dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du)
    }
}
