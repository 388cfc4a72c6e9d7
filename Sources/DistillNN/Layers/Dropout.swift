import DistillCore

/// Inverted dropout: in training, each element is kept with probability `1 - p` and scaled by
/// `1 / (1 - p)`, so inference (where the layer is the identity) needs no rescaling.
///
/// Forward (training): `y = x * m`, `m_i = 1/(1-p)` with probability `1-p`, else 0.
/// Backward: `dx = dy * m`. Any shape. The mask comes from the layer's own seeded generator.
///
/// Reference: N. Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
/// Overfitting", JMLR 2014.
public final class Dropout: Layer {
    /// The probability of dropping an element, in [0, 1).
    public let probability: Float
    /// The generator that draws masks; its state is part of a training checkpoint.
    public var generator: SeededGenerator
    public var computesInputGradient = true

    private var mask = Tensor(zeros: [0])
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])

    public init(probability: Float, generator: SeededGenerator) {
        precondition(probability >= 0 && probability < 1, "Dropout: probability must be in [0, 1)")
        self.probability = probability
        self.generator = generator
    }

    public var descriptor: String { "dropout:\(probability)" }
    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        guard mode == .training, probability > 0 else { return input }
        output.resize(to: input.shape)
        mask.resize(to: input.shape)
        let n = input.count
        let scale = 1 / (1 - probability)
        // Keep when a 32-bit uniform draw is >= p * 2^32: two draws per 64-bit output.
        let threshold = UInt32(min(Double(probability) * 4_294_967_296.0, 4_294_967_295.0))
        let m = mask.pointer
        let x = input.pointer
        let y = output.pointer
        // Eight 32-bit draws per four 64-bit outputs, compared without branches (a branch on a
        // coin flip mispredicts half the time), fused with the multiply. The generator is copied
        // to a local: drawing through the stored property would pay an exclusivity check per draw.
        var rng = generator
        let limit = SIMD8<UInt32>(repeating: threshold)
        let keepValue = Float8(repeating: scale)
        var i = 0
        while i + 8 <= n {
            let bits = SIMD4<UInt64>(rng.next(), rng.next(), rng.next(), rng.next())
            let drop = unsafeBitCast(bits, to: SIMD8<UInt32>.self) .< limit
            let mv = zeroing(keepValue, where: drop)
            store8(mv, m + i)
            store8(load8(x + i) * mv, y + i)
            i += 8
        }
        while i < n {
            m[i] = UInt32(truncatingIfNeeded: rng.next()) >= threshold ? scale : 0
            y[i] = x[i] * m[i]
            i += 1
        }
        generator = rng
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        guard probability > 0 else { return outputGradient }
        inputGradient.resize(to: outputGradient.shape)
        elementwise(
            outputGradient.count,
            Product(a: outputGradient.pointer, b: mask.pointer, c: inputGradient.pointer))
        return inputGradient
    }
}

/// `c = a * b`, elementwise.
private struct Product: ElementwiseKernel {
    let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>,
        c: UnsafeMutablePointer<Float>

    @inline(__always) func eight(at i: Int) { store8(load8(a + i) * load8(b + i), c + i) }

    @inline(__always) func one(at i: Int) { c[i] = a[i] * b[i] }
}
