/// Eight-lane single-precision vectors: the unit of work of the loss kernels.
typealias Vec = SIMD8<Float>

/// The smallest argument `fastExp` distinguishes: `log(Float.leastNormalMagnitude)`.
let expFloor: Float = -87.33654

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
@_transparent
func fastExp(_ x: Vec) -> Vec {
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

/// The smallest argument `fastExp2` distinguishes: `log2(Float.leastNormalMagnitude)`.
let exp2Floor: Float = -126

/// `2^x` for eight lanes, accurate to 1 ulp for `-126 <= x <= 127`.
///
/// The loss kernels work in base 2 (`e^z = 2^(z log2(e))`, with `log2(e)` folded into the factor
/// they already multiply by), which makes the range reduction exact and cheap: `x = n + f` with
/// `n = round(x)` and `|f| <= 1/2` (three additions, none a multiplication). `2^f` is a degree-6
/// polynomial fitted for least relative error on [-1/2, 1/2] (2e-9 before rounding), evaluated by
/// Horner's rule (six fused multiply-adds; the exponentials of a loop's iterations overlap), and
/// `2^n` is assembled in the exponent bits. Arguments
/// below `exp2Floor` (and `-inf`) are raised to it, giving 2^-126 (about 1.2e-38), as `fastExp`
/// does at its floor.
@_transparent
func fastExp2(_ x: Vec) -> Vec {
    let clamped = clampToExp2Floor(x)
    let magic = Vec(repeating: 12_582_912)  // 1.5 * 2^23: adding it rounds to an integer
    let shifted = clamped + magic
    let f = clamped - (shifted - magic)  // exact
    var p = Vec(repeating: 0.000_153_533_62)
    p = Vec(repeating: 0.001_339_887_5).addingProduct(p, f)
    p = Vec(repeating: 0.009_618_437).addingProduct(p, f)
    p = Vec(repeating: 0.055_503_324).addingProduct(p, f)
    p = Vec(repeating: 0.240_226_48).addingProduct(p, f)
    p = Vec(repeating: 0.693_147_18).addingProduct(p, f)
    p = Vec(repeating: 1).addingProduct(p, f)
    let nBits =
        unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    return unsafeBitCast(unsafeBitCast(p, to: SIMD8<Int32>.self) &+ (nBits &<< 23), to: Vec.self)
}

/// Raises every lane below `exp2Floor` to it (one max instruction).
@_transparent
func clampToExp2Floor(_ x: Vec) -> Vec {
    let low = Vec(repeating: exp2Floor)
    return x.replacing(with: low, where: x .< low)
}

/// Scalar `exp` with the same accuracy as the vector one (used on short tails and in tests).
func fastExp(_ x: Float) -> Float { fastExp(Vec(repeating: x))[0] }

/// The sum of the eight lanes, by halves (the stdlib's `sum()` is a generic lane loop).
/// (DistillLosses depends on nothing but the standard library, so it has its own copy of
/// DistillCore's.)
@_transparent
func horizontalSum(_ v: Vec) -> Float {
    let four = v.lowHalf + v.highHalf
    let two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

/// The largest of the eight lanes, by halves.
@_transparent
func horizontalMax(_ v: Vec) -> Float {
    var four = v.lowHalf
    four.replace(with: v.highHalf, where: v.highHalf .> four)
    var two = four.lowHalf
    two.replace(with: four.highHalf, where: four.highHalf .> two)
    return two[1] > two[0] ? two[1] : two[0]
}

/// `log(x)` for eight lanes of positive normal numbers, accurate to about 2 ulps.
///
/// `x = m 2^e` with `m` in [sqrt(1/2), sqrt(2)), then `log(m)` from the Cephes `logf` polynomial
/// in `f = m - 1` (degree 9, minimax on that interval), and `e ln2` added in two parts.
@_transparent
func fastLog(_ x: Vec) -> Vec {
    let bits = unsafeBitCast(x, to: SIMD8<Int32>.self)
    var e = (bits &>> 23) &- 127
    var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F80_0000, to: Vec.self)  // in [1, 2)
    let big = m .> Vec(repeating: 1.414_213_5)
    m.replace(with: m * 0.5, where: big)
    e.replace(with: e &+ 1, where: big)
    let f = m - 1
    let f2 = f * f
    var p = Vec(repeating: 7.037_683_6e-2)
    p = Vec(repeating: -1.151_461_0e-1).addingProduct(p, f)
    p = Vec(repeating: 1.167_699_9e-1).addingProduct(p, f)
    p = Vec(repeating: -1.242_014_1e-1).addingProduct(p, f)
    p = Vec(repeating: 1.424_932_3e-1).addingProduct(p, f)
    p = Vec(repeating: -1.666_805_8e-1).addingProduct(p, f)
    p = Vec(repeating: 2.000_071_5e-1).addingProduct(p, f)
    p = Vec(repeating: -2.499_999_4e-1).addingProduct(p, f)
    p = Vec(repeating: 3.333_333_1e-1).addingProduct(p, f)
    var y = p * f * f2
    let ef = Vec(e)
    y = y.addingProduct(ef, Vec(repeating: -2.121_944_4e-4))
    y = y.addingProduct(f2, Vec(repeating: -0.5))
    return (f + y).addingProduct(ef, Vec(repeating: 0.693_359_375))
}

/// `v^n` for a positive integer `n`, by repeated squaring (2 to 9 multiplications for n <= 32).
///
/// The kernels use it for `exp(s - max) = exp((s - max) / T)^T` when T is a whole number, one
/// exponential fewer per element; the relative error grows to about `n` times that of `v`
/// (8 ulps at T = 4).
@inline(__always)
func power(_ v: Vec, _ n: Int) -> Vec {
    var result = Vec(repeating: 1)
    var base = v
    var k = n
    while k > 0 {
        if k & 1 == 1 { result *= base }
        k >>= 1
        if k > 0 { base *= base }
    }
    return result
}

/// `T` as a whole number in 2...32 when it is one (the kernels then use `power`), else nil.
func wholeTemperature(_ inverseTemperature: Float) -> Int? {
    let t = (1 / Double(inverseTemperature)).rounded()
    guard t >= 2, t <= 32, Float(1 / t) == inverseTemperature else { return nil }
    return Int(t)
}
