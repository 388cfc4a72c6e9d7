/// Eight-lane single-precision vectors: the unit of work of the loss kernels.
@usableFromInline typealias Vec = SIMD8<Float>

/// `exp(x)` for eight lanes, accurate to 2 ulps over the normal range, 0 below `-87.3`.
///
/// Range reduction `x = n ln2 + r` with `|r| <= ln2 / 2` (ln2 split in two parts for an exact
/// product), then a degree-7 Taylor polynomial for `exp(r)` (truncation error below 2^-27 on that
/// interval) and `2^n` assembled in the exponent bits. Inputs below about -87.3 would give
/// subnormal results and are flushed to 0; `-inf` gives 0. The loss kernels only ever pass
/// `x <= 0`, but positive inputs up to 88 are handled too.
@inlinable @inline(__always)
func fastExp(_ x: Vec) -> Vec {
    let lowest: Float = -87.33654   // log(Float.leastNormalMagnitude)
    let clamped = x.clamped(lowerBound: Vec(repeating: lowest), upperBound: Vec(repeating: 88.37626))
    // n = round(x / ln2) with the 1.5 * 2^23 trick: adding it forces rounding to an integer.
    let magic = Vec(repeating: 12_582_912)
    let shifted = clamped * Vec(repeating: 1.442_695_04) + magic
    let n = shifted - magic
    // r = x - n ln2, with ln2 = 0.693359375 + (-2.12194440e-4): the first part has few bits,
    // so n * 0.693359375 is exact.
    var r = clamped - n * Vec(repeating: 0.693_359_375)
    r = r - n * Vec(repeating: -2.121_944_4e-4)
    // exp(r) ~ 1 + r + r^2/2 + ... + r^7/5040 (Horner).
    var p = Vec(repeating: 1.0 / 5040)
    p = p * r + Vec(repeating: 1.0 / 720)
    p = p * r + Vec(repeating: 1.0 / 120)
    p = p * r + Vec(repeating: 1.0 / 24)
    p = p * r + Vec(repeating: 1.0 / 6)
    p = p * r + Vec(repeating: 0.5)
    p = p * r + Vec(repeating: 1)
    p = p * r + Vec(repeating: 1)
    // 2^n: the integer n sits in the low mantissa bits of `shifted`; move it to the exponent.
    let nBits = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let scaled = unsafeBitCast(unsafeBitCast(p, to: SIMD8<Int32>.self) &+ (nBits &<< 23), to: Vec.self)
    return scaled.replacing(with: 0, where: x .< Vec(repeating: lowest))
}

/// Scalar `exp` with the same accuracy as the vector one (used on short tails and in tests).
@inlinable
func fastExp(_ x: Float) -> Float { fastExp(Vec(repeating: x))[0] }
