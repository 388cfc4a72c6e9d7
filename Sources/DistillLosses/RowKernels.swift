import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The per-row kernels behind every loss in this module. Each works on one row of C logits in
// three short passes: (1) maxima, (2) exponentials and their sums, (3) the gradient. Pass 1 reads
// the row from memory; passes 2 and 3 find it in cache for any C up to a few hundred thousand.
// Sums are taken in Float within blocks of 1,024 elements and in Double across blocks.

let blockLength = 1024

/// Loads eight elements from `p + i`, padding lanes at or past `end` with `pad`.
@inline(__always)
func load(_ p: UnsafePointer<Float>, _ i: Int, _ end: Int, pad: Float) -> Vec {
    if i + 8 <= end { return UnsafeRawPointer(p + i).loadUnaligned(as: Vec.self) }
    return loadPartial(p + i, end - i, pad: pad)
}

/// Stores the lanes of `v` that fall before `end`.
@inline(__always)
func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ end: Int) {
    if i + 8 <= end {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Vec.self)
        return
    }
    storePartial(v, p + i, end - i)
}

/// The maximum of a row, and whether every element is finite (an infinity or NaN turns
/// `x * 0` into NaN, which poisons the check sum).
@inline(__always)
func rowMaximum(_ p: UnsafePointer<Float>, _ n: Int) -> (maximum: Float, finite: Bool) {
    var m = Vec(repeating: -.infinity)
    var check = Vec.zero
    var i = 0
    while i + 8 <= n {
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: Vec.self)
        m.replace(with: v, where: v .> m)
        check = check.addingProduct(v, Vec.zero)
        i += 8
    }
    if i < n {
        let v = loadPartial(p + i, n - i, pad: -.infinity)
        m.replace(with: v, where: v .> m)
        check = check.addingProduct(loadPartial(p + i, n - i, pad: 0), Vec.zero)
    }
    return (horizontalMax(m), horizontalSum(check) == 0)
}

/// The maxima of two rows of the same length and whether each is entirely finite, in one loop.
@inline(__always)
func rowMaxima(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int)
    -> (a: Float, aFinite: Bool, b: Float, bFinite: Bool)
{
    var ma = Vec(repeating: -.infinity)
    var mb = ma
    var ca = Vec.zero
    var cb = Vec.zero
    var i = 0
    while i + 8 <= n {
        let x = UnsafeRawPointer(a + i).loadUnaligned(as: Vec.self)
        let y = UnsafeRawPointer(b + i).loadUnaligned(as: Vec.self)
        ma.replace(with: x, where: x .> ma)
        mb.replace(with: y, where: y .> mb)
        ca = ca.addingProduct(x, Vec.zero)
        cb = cb.addingProduct(y, Vec.zero)
        i += 8
    }
    if i < n {
        let x = loadPartial(a + i, n - i, pad: 0)
        let y = loadPartial(b + i, n - i, pad: 0)
        let valid = .!lanes(atOrPast: n - i)
        ma.replace(with: x, where: valid .& (x .> ma))
        mb.replace(with: y, where: valid .& (y .> mb))
        ca = ca.addingProduct(x, Vec.zero)
        cb = cb.addingProduct(y, Vec.zero)
    }
    return (horizontalMax(ma), horizontalSum(ca) == 0, horizontalMax(mb), horizontalSum(cb) == 0)
}

/// Soft (KL) term of one row, plus the hard (cross-entropy) term when `label >= 0`.
///
/// With `xs = (s - max s) / T` and `xu = (u - max u) * teacherScale` the teacher's soft targets are
/// `p = softmax(xu)` and the student's `q = softmax(xs)`; then
/// `KL(p || q) = sum(e^xu * (xu - xs)) / sum(e^xu) + log sum(e^xs) - log sum(e^xu)`, which needs no
/// per-element logarithm and cancels a common shift of the two rows exactly. Teacher terms whose
/// argument falls below `exp2Floor` (in base 2) count with a weight of about 1e-38 (see `fastExp2`).
/// The gradient written is `softWeight * (q - p) + hardWeight * (softmax(s) - onehot(label))`.
/// Pass 2 (`exponentialsPass`) leaves `e^xu` in the gradient buffer (or in `scratch` without one)
/// and `e^xs` in `scratch` (3 C floats), so pass 3 computes no exponential: `e^(s - max s)` is
/// `e^xs` when T = 1, `(e^xs)^T` (a few multiplications) when T is 2, 3, 4 or 8, and otherwise
/// computed and kept by pass 2 as well.
@inline(__always)
func softRow(
    student s: UnsafePointer<Float>, teacher u: UnsafePointer<Float>, classes n: Int,
    inverseTemperature invT: Float, teacherScale invTu: Float,
    studentMaximum ms: Float, teacherMaximum mu: Float,
    label: Int, softWeight: Float, hardWeight: Float,
    gradient: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>
) -> (kl: Double, crossEntropy: Double) {
    let row = SoftRowInputs(
        s: s, u: u, n: n, invT: invT, invTu: invTu, ms: ms, mu: mu, label: label,
        softWeight: softWeight, hardWeight: hardWeight, gradient: gradient, scratch: scratch)
    // Each way of finding the T = 1 exponentials has its own compiled kernel (a type parameter).
    switch label >= 0 && invT != 1 ? wholeTemperature(invT) ?? 1 : 0 {
    case 0: return softRowPasses(NoHardTerm.self, row)
    case 2: return softRowPasses(Square.self, row)
    case 3: return softRowPasses(Cube.self, row)
    case 4: return softRowPasses(FourthPower.self, row)
    case 8: return softRowPasses(EighthPower.self, row)
    default: return softRowPasses(OwnExponential.self, row)
    }
}

/// The arguments of `softRow`.
struct SoftRowInputs {
    var s, u: UnsafePointer<Float>
    var n: Int
    var invT, invTu, ms, mu: Float
    var label: Int
    var softWeight, hardWeight: Float
    var gradient: UnsafeMutablePointer<Float>?
    var scratch: UnsafeMutablePointer<Float>
}

/// Passes 2 and 3 of `softRow`, compiled once per way `H` of finding `e^(s - max s)`.
@inline(never)
func softRowPasses<H: HardExponential>(_: H.Type, _ r: SoftRowInputs) -> (
    kl: Double, crossEntropy: Double
) {
    let n = r.n
    let savedS = r.scratch
    let saved1 = r.scratch + n
    let savedU = r.gradient ?? r.scratch + 2 * n
    let sums = exponentialsPass(
        H.self, r.s, r.u, n, r.invT, r.invTu, r.ms, r.mu, savedU, savedS, saved1)
    let sumS = sums.student
    let sumU = sums.teacher
    let sum1 = H.power > 0 ? sums.hard : sums.student
    // One logarithm for the KL's log(sumS) - log(sumU); the CE needs its own only when T != 1.
    let kl = sums.cross / log2e / sumU + log(sumS / sumU)
    let wantCE = r.label >= 0
    let ce = wantCE ? log(sum1) - Double(r.s[r.label] - r.ms) : 0
    guard let g = r.gradient else { return (kl, ce) }
    // Pass 3: the gradient, over the exponentials pass 2 kept.
    let useHard = wantCE && r.hardWeight != 0
    let q = Vec(repeating: Float(Double(r.softWeight) / sumS))
    let p = Vec(repeating: Float(Double(r.softWeight) / sumU))
    let c = Vec(repeating: useHard ? Float(Double(r.hardWeight) / sum1) : 0)
    var i = 0
    while i + 8 <= n {
        let es = UnsafeRawPointer(savedS + i).loadUnaligned(as: Vec.self)
        let eu = UnsafeRawPointer(g + i).loadUnaligned(as: Vec.self)
        let e1 = H.power == 1 ? UnsafeRawPointer(saved1 + i).loadUnaligned(as: Vec.self) : Vec.zero
        UnsafeMutableRawPointer(g + i).storeBytes(
            of: gradientVector(H.self, es, eu, e1, q, p, c), as: Vec.self)
        i += 8
    }
    if i < n {
        let count = n - i
        let e1 = H.power == 1 ? loadPartial(saved1 + i, count, pad: 0) : Vec.zero
        let v = gradientVector(
            H.self, loadPartial(savedS + i, count, pad: 0), loadPartial(g + i, count, pad: 0), e1,
            q, p, c)
        storePartial(v, g + i, count)
    }
    if useHard { g[r.label] -= r.hardWeight }
    return (kl, ce)
}

/// Eight gradient elements: `q e^xs - p e^xu + c e^(s - max s)`, where `e^(s - max s)` is `e^xs`,
/// `e1` or `(e^xs)^T` as `H` says.
@_transparent
func gradientVector<H: HardExponential>(
    _: H.Type, _ es: Vec, _ eu: Vec, _ e1: Vec, _ q: Vec, _ p: Vec, _ c: Vec
) -> Vec {
    let soft = es * q - eu * p
    switch H.power {
    case 0: return soft.addingProduct(es, c)
    case 1: return soft.addingProduct(e1, c)
    default: return soft.addingProduct(power(es, H.power), c)
    }
}

/// The sums of pass 2 of `softRow`, in Double.
struct ExponentialSums {
    /// `sum e^xs`, `sum e^xu`, `sum e^(s - max s)` (0 unless asked for), `sum e^xu (xu - xs) log2(e)`.
    var student = 0.0, teacher = 0.0, hard = 0.0, cross = 0.0
}

/// Pass 2 of `softRow`: the exponentials of a row, their sums, and the KL's cross term; stores
/// `e^xu`, `e^xs` and (when `H.power` is 1) `e^(s - max s)` for pass 3.
///
/// Full vectors run in blocks of `blockLength` (sums in Float within a block); the row's last,
/// partial vector is padded.
@inline(__always)
func exponentialsPass<H: HardExponential>(
    _: H.Type, _ s: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int, _ invT: Float,
    _ invTu: Float,
    _ ms: Float, _ mu: Float, _ savedU: UnsafeMutablePointer<Float>,
    _ savedS: UnsafeMutablePointer<Float>, _ saved1: UnsafeMutablePointer<Float>
) -> ExponentialSums {
    let constants = PassConstants(ms: ms, mu: mu, invT: invT, invTu: invTu)
    var sums = ExponentialSums()
    let full = n - n % 8
    var i = 0
    while i < full {
        let end = min(i + blockLength, full)
        var vs = Vec.zero
        var vu = Vec.zero
        var v1 = Vec.zero
        var va = Vec.zero
        while i < end {
            let e = exponentials(
                UnsafeRawPointer(s + i).loadUnaligned(as: Vec.self),
                UnsafeRawPointer(u + i).loadUnaligned(as: Vec.self), constants, H.power)
            vs += e.es
            vu += e.eu
            va = va.addingProduct(e.eu, e.difference)
            UnsafeMutableRawPointer(savedU + i).storeBytes(of: e.eu, as: Vec.self)
            UnsafeMutableRawPointer(savedS + i).storeBytes(of: e.es, as: Vec.self)
            if H.power > 0 { v1 += e.e1 }
            if H.power == 1 {
                UnsafeMutableRawPointer(saved1 + i).storeBytes(of: e.e1, as: Vec.self)
            }
            i += 8
        }
        sums.student += Double(horizontalSum(vs))
        sums.teacher += Double(horizontalSum(vu))
        sums.cross += Double(horizontalSum(va))
        if H.power > 0 { sums.hard += Double(horizontalSum(v1)) }
    }
    if i < n {
        // Padding lanes hold -inf: their exponentials are about 1e-38 and their cross terms are
        // zeroed.
        let count = n - i
        let e = exponentials(
            loadPartial(s + i, count, pad: -.infinity), loadPartial(u + i, count, pad: -.infinity),
            constants, H.power)
        let padding = lanes(atOrPast: count)
        sums.student += Double(horizontalSum(e.es))
        sums.teacher += Double(horizontalSum(e.eu))
        sums.cross += Double(
            horizontalSum((e.eu * e.difference).replacing(with: 0, where: padding)))
        storePartial(e.eu, savedU + i, count)
        storePartial(e.es, savedS + i, count)
        if H.power > 0 { sums.hard += Double(horizontalSum(e.e1)) }
        if H.power == 1 { storePartial(e.e1, saved1 + i, count) }
    }
    return sums
}

/// How `softRow` finds `e^(s - max s)` for the hard term: `power` 0, not at all (no label, or
/// T = 1 where it is `e^xs`); 1, its own exponential; `k >= 2`, as `(e^xs)^k` when T = k (a few
/// multiplications; the relative error grows to about `k` times that of `e^xs`).
protocol HardExponential { static var power: Int { get } }
enum NoHardTerm: HardExponential { static var power: Int { 0 } }
enum OwnExponential: HardExponential { static var power: Int { 1 } }
enum Square: HardExponential { static var power: Int { 2 } }
enum Cube: HardExponential { static var power: Int { 3 } }
enum FourthPower: HardExponential { static var power: Int { 4 } }
enum EighthPower: HardExponential { static var power: Int { 8 } }

/// The row constants of `exponentials`, as vectors; the scales include `log2(e)`.
struct PassConstants {
    var ms, mu, scaleS, scaleU, scale1: Vec
    @inline(__always)
    init(ms: Float, mu: Float, invT: Float, invTu: Float) {
        self.ms = Vec(repeating: ms)
        self.mu = Vec(repeating: mu)
        scaleS = Vec(repeating: Float(Double(invT) * log2e))
        scaleU = Vec(repeating: Float(Double(invTu) * log2e))
        scale1 = Vec(repeating: Float(log2e))
    }
}

/// `log2(e)`; the pass-2 arguments are in base 2 (`xs log2(e)`, ...), their differences come back
/// to base e by `ln 2`.
let log2e = 1.442_695_040_888_963_4

/// The exponentials of eight elements of pass 2: `e^xs`, `e^xu`, `(xu - xs) log2(e)` and
/// `e^(s - max s)` (zero when `hardPower` is 0; see `exponentialsPass`).
///
/// The student's argument is used as it is (log q can be far below the exp floor and the KL must
/// see it); the teacher's is clamped to the floor, which keeps `e^xu * (xu - xs)` finite for zero
/// teacher probabilities.
@_transparent
func exponentials(_ x: Vec, _ y: Vec, _ c: PassConstants, _ hardPower: Int)
    -> (es: Vec, eu: Vec, difference: Vec, e1: Vec)
{
    let xs = (x - c.ms) * c.scaleS
    let es = fastExp2(xs)
    let xu = clampToExp2Floor((y - c.mu) * c.scaleU)
    let eu = fastExp2(xu)
    let e1 =
        hardPower == 0
        ? Vec.zero : hardPower == 1 ? fastExp2((x - c.ms) * c.scale1) : power(es, hardPower)
    return (es, eu, xu - xs, e1)
}

/// `log sum exp(s - max s)` of one row (the log-partition at T = 1, relative to the maximum), and,
/// when a gradient buffer is given, `gradient (+)= scale * softmax(s)`.
///
/// Setting the gradient (not `accumulate`), the exponentials go into it as they are summed and are
/// scaled there: one exponential per element instead of two.
@inline(__always)
func logPartitionRow(
    student s: UnsafePointer<Float>, classes n: Int, studentMaximum ms: Float,
    gradientScale: Float, gradient: UnsafeMutablePointer<Float>?, accumulate: Bool
) -> Double {
    let msv = Vec(repeating: ms)
    let keep = accumulate ? nil : gradient
    var sum = 0.0
    var start = 0
    while start < n {
        let end = min(start + blockLength, n)
        var v = Vec.zero
        var i = start
        while i < end {
            let e = fastExp(load(s, i, end, pad: -.infinity) - msv)
            v += e
            if let keep { store(e, keep, i, end) }
            i += 8
        }
        sum += Double(horizontalSum(v))
        start = end
    }
    if let g = gradient {
        let scale = Vec(repeating: Float(Double(gradientScale) / sum))
        var i = 0
        while i < n {
            if accumulate {
                let grad = fastExp(load(s, i, n, pad: -.infinity) - msv) * scale
                store(grad + load(g, i, n, pad: 0), g, i, n)
            } else {
                store(load(g, i, n, pad: 0) * scale, g, i, n)
            }
            i += 8
        }
    }
    return log(sum)
}

/// Mean squared difference of one row, `sum((s - t)^2) / C`; with a gradient buffer, writes
/// `gradient = scale * 2 (s - t) / C`.
@inline(__always)
func squaredErrorRow(
    student s: UnsafePointer<Float>, teacher t: UnsafePointer<Float>, classes n: Int,
    gradientScale: Float, gradient: UnsafeMutablePointer<Float>?
) -> Double {
    var sum = 0.0
    let factor = Vec(repeating: 2 * gradientScale / Float(n))
    var start = 0
    while start < n {
        let end = min(start + blockLength, n)
        var v = Vec.zero
        var i = start
        while i < end {
            let d = load(s, i, end, pad: 0) - load(t, i, end, pad: 0)
            v += d * d
            if let g = gradient { store(d * factor, g, i, end) }
            i += 8
        }
        sum += Double(horizontalSum(v))
        start = end
    }
    return sum / Double(n)
}
