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

/// 0, 1, ..., 7: for masking the lanes of a partial vector.
let laneIndices = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)

/// Loads eight elements from `p + i`, padding lanes at or past `end` with `pad`.
@inline(__always)
func load(_ p: UnsafePointer<Float>, _ i: Int, _ end: Int, pad: Float) -> Vec {
    if i + 8 <= end { return UnsafeRawPointer(p + i).loadUnaligned(as: Vec.self) }
    return loadPartial(p + i, end - i, pad: pad)
}

/// The first `count` (1 to 7) elements of `p`, then `pad`. Lane indices are constants in each
/// case, so no lane is written through memory.
@inline(never)
func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, pad z: Float) -> Vec {
    switch count {
    case 1: return Vec(p[0], z, z, z, z, z, z, z)
    case 2: return Vec(p[0], p[1], z, z, z, z, z, z)
    case 3: return Vec(p[0], p[1], p[2], z, z, z, z, z)
    case 4: return Vec(p[0], p[1], p[2], p[3], z, z, z, z)
    case 5: return Vec(p[0], p[1], p[2], p[3], p[4], z, z, z)
    case 6: return Vec(p[0], p[1], p[2], p[3], p[4], p[5], z, z)
    case 7: return Vec(p[0], p[1], p[2], p[3], p[4], p[5], p[6], z)
    default: return Vec(repeating: z)
    }
}

/// Stores the lanes of `v` that fall before `end`.
@inline(__always)
func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ end: Int) {
    if i + 8 <= end { UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Vec.self); return }
    storePartial(v, p + i, end - i)
}

/// Stores the first `count` (1 to 7) lanes of `v`.
@inline(never)
func storePartial(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 4 {
        UnsafeMutableRawPointer(p).storeBytes(of: v.lowHalf, as: SIMD4<Float>.self)
        for k in 4..<count { p[k] = v[k] }
    } else {
        for k in 0..<count { p[k] = v[k] }
    }
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
    -> (a: Float, aFinite: Bool, b: Float, bFinite: Bool) {
    var ma = Vec(repeating: -.infinity), mb = ma
    var ca = Vec.zero, cb = Vec.zero
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
        let x = loadPartial(a + i, n - i, pad: 0), y = loadPartial(b + i, n - i, pad: 0)
        let valid = laneIndices .< SIMD8<Int32>(repeating: Int32(n - i))
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
/// argument falls below `expFloor` count with a weight of about 1e-38 (see `fastExp`).
/// The gradient written is `softWeight * (q - p) + hardWeight * (softmax(s) - onehot(label))`.
/// Between passes 2 and 3 the gradient buffer holds `e^xu` and `scratch` (2 C floats) holds
/// `e^xs` and `e^(s - max s)`, so pass 3 computes no exponential.
@inline(__always)
func softRow(
    student s: UnsafePointer<Float>, teacher u: UnsafePointer<Float>, classes n: Int,
    inverseTemperature invT: Float, teacherScale invTu: Float,
    studentMaximum ms: Float, teacherMaximum mu: Float,
    label: Int, softWeight: Float, hardWeight: Float,
    gradient: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>
) -> (kl: Double, crossEntropy: Double) {
    let savedS = scratch, saved1 = scratch + n
    let wantCE = label >= 0
    let separateT1 = wantCE && invT != 1
    let wholeT = separateT1 ? wholeTemperature(invT) : nil
    let msv = Vec(repeating: ms), muv = Vec(repeating: mu)
    let invTv = Vec(repeating: invT), invTuv = Vec(repeating: invTu)
    var sumS = 0.0, sumU = 0.0, sum1 = 0.0, cross = 0.0
    var start = 0
    while start < n {
        let end = min(start + blockLength, n)
        var vs = Vec.zero, vu = Vec.zero, v1 = Vec.zero, va = Vec.zero
        var i = start
        while i < end {
            let x = load(s, i, end, pad: -.infinity)
            let y = load(u, i, end, pad: -.infinity)
            // The student's argument is used as it is (log q can be far below the exp floor and
            // the KL must see it); the teacher's is clamped to the floor, which keeps
            // e^xu * (xu - xs) finite for zero teacher probabilities. Padding lanes (past the
            // row's end) are zeroed: only the last, partial vector of a row has them.
            let xs = (x - msv) * invTv
            let es = fastExp(xs)
            let xu = clampToExpFloor((y - muv) * invTuv)
            let eu = fastExp(xu)
            vs += es
            vu += eu
            if i + 8 <= end {
                va = va.addingProduct(eu, xu - xs)
            } else {
                va += (eu * (xu - xs)).replacing(with: 0, where: laneIndices .>= SIMD8<Int32>(repeating: Int32(end - i)))
            }
            if separateT1 {
                let e1 = wholeT.map { power(es, $0) } ?? fastExp(x - msv)
                v1 += e1
                if gradient != nil { store(e1, saved1, i, end) }
            }
            if let g = gradient {
                store(eu, g, i, end)
                store(es, savedS, i, end)
            }
            i += 8
        }
        sumS += Double(horizontalSum(vs)); sumU += Double(horizontalSum(vu)); cross += Double(horizontalSum(va))
        if separateT1 { sum1 += Double(horizontalSum(v1)) }
        start = end
    }
    // One logarithm for the KL's log(sumS) - log(sumU); the CE needs its own only when T != 1.
    let kl = cross / sumU + log(sumS / sumU)
    var ce = 0.0
    if wantCE {
        let logS1 = log(separateT1 ? sum1 : sumS)
        ce = logS1 - Double(s[label] - ms)
        if !separateT1 { sum1 = sumS }
    }
    if let g = gradient {
        let qScale = Vec(repeating: Float(Double(softWeight) / sumS))
        let pScale = Vec(repeating: Float(Double(softWeight) / sumU))
        let useHard = wantCE && hardWeight != 0
        let cScale = Vec(repeating: useHard ? Float(Double(hardWeight) / sum1) : 0)
        var i = 0
        while i < n {
            let es = load(savedS, i, n, pad: 0)
            let eu = load(g, i, n, pad: 0)
            var grad = es * qScale - eu * pScale
            if useHard { grad = grad.addingProduct(separateT1 ? load(saved1, i, n, pad: 0) : es, cScale) }
            store(grad, g, i, n)
            i += 8
        }
        if useHard { g[label] -= hardWeight }
    }
    return (kl, ce)
}

/// `log sum exp(s - max s)` of one row (the log-partition at T = 1, relative to the maximum), and,
/// when a gradient buffer is given, `gradient (+)= scale * softmax(s)`.
@inline(__always)
func logPartitionRow(
    student s: UnsafePointer<Float>, classes n: Int, studentMaximum ms: Float,
    gradientScale: Float, gradient: UnsafeMutablePointer<Float>?, accumulate: Bool
) -> Double {
    let msv = Vec(repeating: ms)
    var sum = 0.0
    var start = 0
    while start < n {
        let end = min(start + blockLength, n)
        var v = Vec.zero
        var i = start
        while i < end {
            v += fastExp(load(s, i, end, pad: -.infinity) - msv)
            i += 8
        }
        sum += Double(horizontalSum(v))
        start = end
    }
    if let g = gradient {
        let scale = Vec(repeating: Float(Double(gradientScale) / sum))
        var i = 0
        while i < n {
            var grad = fastExp(load(s, i, n, pad: -.infinity) - msv) * scale
            if accumulate { grad += load(g, i, n, pad: 0) }
            store(grad, g, i, n)
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

/// The index of the first maximum of a row (as `torch.argmax`).
@inline(__always)
func argmaxRow(_ p: UnsafePointer<Float>, _ n: Int) -> Int {
    var best = 0
    for i in 1..<max(n, 1) where p[i] > p[best] { best = i }
    return best
}
