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
        let x = SendablePointer(input.pointer)
        let y = SendablePointer(output.pointer)
        let approximation = self.approximation
        parallelFor(input.count, costPerItem: 16) { range in
            switch approximation {
            case .exact:
                GELU.eightAtATime(range) { i, n in
                    let v = GELU.load(x.pointer + i, n)
                    GELU.store(v * GELU.normalCDF(v).cdf, y.pointer + i, n)
                }
            case .tanh:
                for i in range {
                    let v = x[i]
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
            switch approximation {
            case .exact:
                GELU.eightAtATime(range) { i, n in
                    let v = GELU.load(x.pointer + i, n)
                    let (cdf, density) = GELU.normalCDF(v)
                    GELU.store(
                        GELU.load(dy.pointer + i, n) * cdf.addingProduct(v, density),
                        dx.pointer + i, n)
                }
            case .tanh:
                for i in range {
                    let v = x[i]
                    let v2 = v * v
                    let t = tanhf(GELU.tanhScale * (v + GELU.cubic * v2 * v))
                    let du = GELU.tanhScale * (1 + 3 * GELU.cubic * v2)
                    dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du)
                }
            }
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

    /// Calls `body(i, n)` for `i` stepping by 8 through `range`, `n` the lanes in use (8, or fewer
    /// at the end).
    @inline(__always)
    static func eightAtATime(_ range: Range<Int>, _ body: (Int, Int) -> Void) {
        var i = range.lowerBound
        while i < range.upperBound {
            body(i, min(8, range.upperBound - i))
            i += 8
        }
    }

    @inline(__always)
    static func load(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> SIMD8<Float> {
        if n == 8 { return load8(p) }
        var v = SIMD8<Float>()
        for j in 0..<n { v[j] = p[j] }
        return v
    }

    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if n == 8 { return store8(v, p) }
        for j in 0..<n { p[j] = v[j] }
    }
}
