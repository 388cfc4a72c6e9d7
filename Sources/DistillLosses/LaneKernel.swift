import DistillCore

// The distillation loss for few classes (C <= 32): eight rows at a time, one row per SIMD lane,
// walking the classes. With C = 10 the row kernel would spend most of its time on per-row work
// (three passes over 10 elements, partial vectors, two logarithms); here every exponential and
// logarithm works on eight rows at once.

/// The largest class count the lane kernel takes.
let laneKernelClassLimit = 32

/// Element `column` of the eight rows starting at `offsets` (constant lane indices: no lane is
/// written through memory).
@inline(__always)
func gather(_ p: UnsafePointer<Float>, _ o: SIMD8<Int32>, _ column: Int) -> Vec {
    Vec(
        p[Int(o[0]) + column], p[Int(o[1]) + column], p[Int(o[2]) + column], p[Int(o[3]) + column],
        p[Int(o[4]) + column], p[Int(o[5]) + column], p[Int(o[6]) + column], p[Int(o[7]) + column])
}

/// Per-lane results of `softRowsInLanes`.
struct LaneTerms {
    var kl: Vec
    var crossEntropy: Vec
    /// Lanes (rows) whose student or teacher logits are not all finite.
    var nonFiniteStudent: SIMDMask<SIMD8<Int32>>
    var nonFiniteTeacher: SIMDMask<SIMD8<Int32>>
}

/// The KL and cross-entropy terms of eight rows, and their gradient, as `softRow` computes them
/// for one: `softWeight * (q - p) + hardWeight * (softmax(s) - onehot(label))` per lane.
///
/// - Parameters:
///   - offsets: the element offset of each lane's row (lanes past the last row repeat a valid
///     offset and have zero weights; `store` says which lanes to write).
///   - labels: each lane's class, or a negative value for no hard term.
///   - scratch: `5 * classes` vectors.
@inline(__always)
func softRowsInLanes(
    student s: UnsafePointer<Float>, teacher u: UnsafePointer<Float>, classes n: Int,
    offsets: SIMD8<Int32>,
    inverseTemperature invT: Float, teacherScale invTu: Float, labels: SIMD8<Int32>, wantCE: Bool,
    softWeight: Vec, hardWeight: Vec, gradient: UnsafeMutablePointer<Float>?, store: Int,
    scratch: UnsafeMutablePointer<Vec>
) -> LaneTerms {
    let xs = scratch
    let ys = scratch + n
    let es = scratch + 2 * n
    let eu = scratch + 3 * n
    let e1 = scratch + 4 * n
    var ms = Vec(repeating: -.infinity)
    var mu = ms
    var checkS = Vec.zero
    var checkT = Vec.zero
    for c in 0..<n {
        let x = gather(s, offsets, c)
        let y = gather(u, offsets, c)
        xs[c] = x
        ys[c] = y
        ms.replace(with: x, where: x .> ms)
        mu.replace(with: y, where: y .> mu)
        checkS = checkS.addingProduct(x, Vec.zero)
        checkT = checkT.addingProduct(y, Vec.zero)
    }
    let separateT1 = wantCE && invT != 1
    let wholeT = separateT1 ? wholeTemperature(invT) : nil
    // Base-2 arguments, as in the row kernel (`exponentials`).
    let scaleS = Vec(repeating: Float(Double(invT) * log2e))
    let scaleU = Vec(repeating: Float(Double(invTu) * log2e))
    let scale1 = Vec(repeating: Float(log2e))
    var sumS = Vec.zero
    var sumU = Vec.zero
    var sum1 = Vec.zero
    var cross = Vec.zero
    for c in 0..<n {
        let x = xs[c]
        let a = (x - ms) * scaleS
        let ea = fastExp2(a)
        let b = clampToExp2Floor((ys[c] - mu) * scaleU)
        let eb = fastExp2(b)
        sumS += ea
        sumU += eb
        cross = cross.addingProduct(eb, b - a)
        es[c] = ea
        eu[c] = eb
        if separateT1 {
            let e = wholeT.map { power(ea, $0) } ?? fastExp2((x - ms) * scale1)
            sum1 += e
            e1[c] = e
        }
    }
    let logS = fastLog(sumS)
    let logU = fastLog(sumU)
    let kl = cross / (sumU * Float(log2e)) + logS - logU
    var ce = Vec.zero
    if wantCE {
        let logS1 = separateT1 ? fastLog(sum1) : logS
        // Negative labels to 0, by bits (the stdlib's masked replace is a per-lane loop here).
        let safeLabels = labels & ~(labels &>> 31)
        let picked = Vec(
            s[Int(offsets[0] &+ safeLabels[0])], s[Int(offsets[1] &+ safeLabels[1])],
            s[Int(offsets[2] &+ safeLabels[2])], s[Int(offsets[3] &+ safeLabels[3])],
            s[Int(offsets[4] &+ safeLabels[4])], s[Int(offsets[5] &+ safeLabels[5])],
            s[Int(offsets[6] &+ safeLabels[6])], s[Int(offsets[7] &+ safeLabels[7])])
        ce = logS1 - (picked - ms)
    }
    if let g = gradient {
        let qScale = softWeight / sumS
        let pScale = softWeight / sumU
        let cScale = hardWeight / (separateT1 ? sum1 : sumS)
        for c in 0..<n {
            var grad = es[c] * qScale - eu[c] * pScale
            grad = grad.addingProduct(separateT1 ? e1[c] : es[c], cScale)
            // Minus hardWeight in the lanes whose label is c, by bits: the comparison's lanes are
            // all ones or zeros (a masked replace compiles to a per-lane loop here).
            let hit = unsafeBitCast(
                labels .== SIMD8<Int32>(repeating: Int32(c)), to: SIMD8<Int32>.self)
            grad -= unsafeBitCast(
                hit & unsafeBitCast(hardWeight, to: SIMD8<Int32>.self), to: Vec.self)
            if store == 8 {
                // Constant lane indices: no lane goes through memory.
                g[Int(offsets[0]) + c] = grad[0]
                g[Int(offsets[1]) + c] = grad[1]
                g[Int(offsets[2]) + c] = grad[2]
                g[Int(offsets[3]) + c] = grad[3]
                g[Int(offsets[4]) + c] = grad[4]
                g[Int(offsets[5]) + c] = grad[5]
                g[Int(offsets[6]) + c] = grad[6]
                g[Int(offsets[7]) + c] = grad[7]
            } else {
                for k in 0..<store { g[Int(offsets[k]) + c] = grad[k] }
            }
        }
    }
    return LaneTerms(
        kl: kl, crossEntropy: ce, nonFiniteStudent: checkS .!= Vec.zero,
        nonFiniteTeacher: checkT .!= Vec.zero)
}
