/// A fast, seedable random number generator (xoshiro256**, seeded through SplitMix64).
///
/// Every source of randomness in Distill (initialisation, dropout, shuffling, augmentation)
/// takes one of these, so a run is reproducible from its seed. The whole state is four words
/// (`state`), which checkpoints save and restore.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    /// The generator's complete state.
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose sequence depends only on `seed`.
    public init(seed: UInt64) {
        var s = seed
        func splitMix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// A generator restored from a saved `state`.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        self.state = state
    }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    /// A uniform `Float` in [0, 1) with 24 random bits.
    @inlinable @inline(__always)
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// A standard normal `Float` (Box-Muller transform, computed in Double).
    public mutating func nextNormal() -> Float {
        // u1 in (0, 1] so that log(u1) is finite.
        let u1 = Double((next() >> 11) + 1) * 0x1p-53
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A Gamma(`shape`, 1) draw (Marsaglia and Tsang's method; for a shape below 1, a draw at
    /// `shape + 1` times `u^(1 / shape)`), in Double.
    public mutating func nextGamma(shape: Double) -> Double {
        precondition(shape > 0 && shape.isFinite)
        if shape < 1 {
            let u = Double((next() >> 11) + 1) * 0x1p-53  // (0, 1]
            return nextGamma(shape: shape + 1) * _pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            let x = Double(nextNormal())
            let v = (1 + c * x) * (1 + c * x) * (1 + c * x)
            guard v > 0 else { continue }
            let u = Double((next() >> 11) + 1) * 0x1p-53
            if _log(u) < 0.5 * x * x + d - d * v + d * _log(v) { return d * v }
        }
    }

    /// A Beta(`a`, `b`) draw, as `X / (X + Y)` with `X ~ Gamma(a)` and `Y ~ Gamma(b)`.
    public mutating func nextBeta(_ a: Double, _ b: Double) -> Double {
        let x = nextGamma(shape: a)
        let y = nextGamma(shape: b)
        return x + y > 0 ? x / (x + y) : 0.5
    }

    /// A new generator for an independent stream, derived from this one's next output.
    public mutating func split() -> SeededGenerator {
        SeededGenerator(seed: next())
    }

    public static func == (a: SeededGenerator, b: SeededGenerator) -> Bool {
        a.state == b.state
    }

    @inlinable @inline(__always)
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
@inline(__always) private func _pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) private func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Darwin.cos(x) }
@inline(__always) private func _pow(_ x: Double, _ y: Double) -> Double { Darwin.pow(x, y) }
#endif
