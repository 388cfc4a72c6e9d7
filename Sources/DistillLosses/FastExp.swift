import DistillCore

/// Eight-lane single-precision vectors: the unit of work of the loss kernels.
typealias Vec = SIMD8<Float>

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
