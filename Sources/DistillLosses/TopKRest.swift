import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The soft targets of a teacher known only by its k most probable classes and their
/// log-probabilities at T = 1, with the missing mass kept as a "rest" bucket.
///
/// Each teacher row holds `log p_j` (T = 1) for its k classes `K` and `-inf` for the others. The
/// rest bucket has mass `r = 1 - sum_{j in K} p_j`. At temperature T the k classes and the bucket
/// are softened as k + 1 outcomes with log-probabilities `v_j` and `log r`:
///
///     P_j = exp(v_j / T) / Z (j in K),   P_rest = exp(log r / T) / Z,   Z = sum of the k + 1 terms
///
/// and the student's own softmax `q = softmax(s / T)` is coarsened the same way
/// (`q_rest = sum_{i not in K} q_i`). The soft term is the KL divergence between the two
/// (k + 1)-outcome distributions,
///
///     KL = sum_{j in K} P_j log(P_j / q_j) + P_rest log(P_rest / q_rest),
///
/// which equals the dense KL against the target `P~` that spreads the bucket over the other
/// classes in proportion to the student's probabilities, `P~_i = P_rest q_i / q_rest`: the gradient
/// is `T (q - P~)` (times the loss's weights). At T = 1 it is exactly the KL of the teacher's and
/// student's coarsened distributions; at other temperatures the bucket is softened as one outcome.
/// With k = C the bucket is empty and this is the dense loss.
///
/// Returns `log P~` per row (`-inf` where `P~` is 0), the teacher rows the loss kernels take at
/// scale 1.
/// - Throws: `LossError` when a row's probabilities sum above 1 (the values are not
///   log-probabilities) or a value is NaN or +inf.
func restBucketLogTargets(
    _ teacher: UnsafeBufferPointer<Float>, student: UnsafeBufferPointer<Float>, rows: Int,
    classes: Int, temperature: Float
) throws -> [Float] {
    guard teacher.count == rows * classes, student.count == rows * classes else {
        throw LossError.shapeMismatch(
            "top-k teacher rows have \(teacher.count) values, student logits \(student.count)")
    }
    var out = [Float](repeating: -.infinity, count: rows * classes)
    let invT = 1 / Double(temperature)
    let totals = out.withUnsafeMutableBufferPointer { o in
        let (target, t, s) = (o.baseAddress!, teacher.baseAddress!, student.baseAddress!)
        return forEachRowChunk(rows: rows, classes: classes) { range in
            var totals = RowTotals()
            for r in range where totals.error == nil {
                totals.error = restBucketRow(
                    t + r * classes, student: s + r * classes, classes: classes, invT: invT,
                    into: target + r * classes, row: r)
            }
            return totals
        }
    }
    if let error = totals.error { throw error }
    return out
}

/// One row of `restBucketLogTargets`; the error for a row that is not log-probabilities.
private func restBucketRow(
    _ t: UnsafePointer<Float>, student s: UnsafePointer<Float>, classes: Int, invT: Double,
    into out: UnsafeMutablePointer<Float>, row: Int
) -> LossError? {
    // The teacher's k + 1 outcomes at T = 1, then at T (in Double).
    var known = 0.0
    var maxKnown = -Double.infinity
    for c in 0..<classes where t[c] != -.infinity {
        guard t[c].isFinite else {
            return .nonFinite(input: "top-k teacher values", row: row, column: c, value: t[c])
        }
        known += exp(Double(t[c]))
        maxKnown = max(maxKnown, Double(t[c]) * invT)
    }
    guard known <= 1 + 1e-3 else {
        return .invalidProbabilities(
            row: row,
            reason:
                "the top-k probabilities sum to \(known) > 1: the rest bucket needs log-probabilities (log-softmax at T = 1), not logits"
        )
    }
    let rest = max(0, 1 - known)
    let restLogit = rest > 0 ? log(rest) * invT : -Double.infinity
    let top = max(maxKnown, restLogit)
    var z = rest > 0 ? exp(restLogit - top) : 0
    for c in 0..<classes where t[c] != -.infinity { z += exp(Double(t[c]) * invT - top) }
    let logZ = top + log(z)
    // The student's log-mass on the other classes at T: log sum_{i not in K} exp(s_i / T), the
    // exponentials eight lanes at a time.
    var largest = -Float.infinity
    for c in 0..<classes where t[c] == -.infinity { largest = max(largest, s[c]) }
    var lanes = Vec()
    var c = 0
    let (scale, top8) = (Vec(repeating: Float(invT)), Vec(repeating: largest))
    while c + 8 <= classes {
        let other = load8(t + c) .== -Float.infinity
        lanes += fastExp((load8(s + c) - top8) * scale).replacing(with: 0, where: .!other)
        c += 8
    }
    var otherSum = Double(lanes.sum())
    for j in c..<classes where t[j] == -.infinity {
        otherSum += exp(Double(s[j] - largest) * invT)
    }
    let logOther = Double(largest) * invT + log(otherSum)
    let logRest = restLogit - logZ  // log P_rest
    for c in 0..<classes {
        if t[c] != -.infinity {
            out[c] = Float(Double(t[c]) * invT - logZ)
        } else if rest > 0 {
            out[c] = Float(logRest + Double(s[c]) * invT - logOther)
        }
    }
    return nil
}
