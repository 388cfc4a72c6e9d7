/// Vectorised `exp`, shared by the loss kernels and the element-wise layers.

/// The smallest argument `fastExp` distinguishes: `log(Float.leastNormalMagnitude)`.
@usableFromInline package let expFloor: Float = -87.33654

/// `exp(x)` for eight lanes, accurate to 2 ulps for `-87.3 <= x <= 88`.
///
/// Range reduction `x = n ln2 + r` with `|r| <= ln2 / 2` (ln2 split in two parts for an exact
/// product), then a degree-7 Taylor polynomial for `exp(r)` (truncation error below 2^-27 on that
/// interval), evaluated by Estrin's scheme (dependency depth 4 instead of Horner's 7, so the
/// independent exponentials of a loop overlap), and `2^n` assembled in the exponent bits.
///
/// Arguments below `expFloor` (and `-inf`) are raised to it, giving about 1.2e-38 instead of a
/// subnormal or 0: negligible beside the partition sums (>= 1) the kernels divide by, and it keeps
/// `exp(x) * x` finite, so the kernels need no special case for `-inf` padding or zero
/// probabilities. Arguments above 88 are not clamped (the kernels pass `x <= 0`).
@inlinable @inline(__always)
package func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    typealias Vec = SIMD8<Float>
    let low = Vec(repeating: expFloor)
    let clamped = x.replacing(with: low, where: x .< low)  // compiles to one max instruction
    // n = round(x / ln2) with the 1.5 * 2^23 trick: adding it forces rounding to an integer.
    // `addingProduct` is a fused multiply-add (one rounding); Swift does not contract `a * b + c`.
    let magic = Vec(repeating: 12_582_912)
    let shifted = magic.addingProduct(clamped, Vec(repeating: 1.442_695_04))
    let n = shifted - magic
    // r = x - n ln2, with ln2 = 0.693359375 + (-2.12194440e-4): the first part has few bits,
    // so n * 0.693359375 is exact.
    var r = clamped.addingProduct(n, Vec(repeating: -0.693_359_375))
    r = r.addingProduct(n, Vec(repeating: 2.121_944_4e-4))
    // exp(r) ~ sum_{k<=7} r^k / k!, by Estrin: pairs (c0 + c1 r), (c2 + c3 r), ... combined with
    // r^2 and r^4.
    let r2 = r * r
    let r4 = r2 * r2
    let p01 = Vec(repeating: 1).addingProduct(r, Vec(repeating: 1))
    let p23 = Vec(repeating: 0.5).addingProduct(r, Vec(repeating: 1.0 / 6))
    let p45 = Vec(repeating: 1.0 / 24).addingProduct(r, Vec(repeating: 1.0 / 120))
    let p67 = Vec(repeating: 1.0 / 720).addingProduct(r, Vec(repeating: 1.0 / 5040))
    let p = p01.addingProduct(r2, p23).addingProduct(r4, p45.addingProduct(r2, p67))
    // 2^n: the integer n sits in the low mantissa bits of `shifted`; move it to the exponent.
    let nBits =
        unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    return unsafeBitCast(unsafeBitCast(p, to: SIMD8<Int32>.self) &+ (nBits &<< 23), to: Vec.self)
}

/// Scalar `exp` with the same accuracy as the vector one (used on short tails and in tests).
@inlinable
package func fastExp(_ x: Float) -> Float { fastExp(SIMD8<Float>(repeating: x))[0] }
