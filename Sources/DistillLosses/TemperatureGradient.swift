#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The derivative of the soft term `T^2 * KL(softmax(t/T) || softmax(s/T))`, averaged over rows,
/// with respect to the temperature: what a learnable temperature (CTKD) is trained with.
///
/// With `p = softmax(t/T)`, `q = softmax(s/T)`, `d log q_i / dT = -(s_i - E_q[s]) / T^2` and likewise
/// for `p`, so
///
///     dKL/dT = -(1/T^2) [ sum_i p_i (t_i - E_p[t]) (log p_i - log q_i) - (E_p[s] - E_q[s]) ]
///     d(T^2 KL)/dT = 2 T KL + T^2 dKL/dT
///
/// Computed in Double, row by row.
/// - Throws: `LossError` for T <= 0, non-finite logits or mismatched sizes.
public func softTermTemperatureGradient(
    studentLogits s: UnsafeBufferPointer<Float>, teacherLogits t: UnsafeBufferPointer<Float>,
    rows: Int, classes: Int, temperature: Float
) throws -> Double {
    guard temperature.isFinite, temperature > 0 else {
        throw LossError.invalidTemperature(temperature)
    }
    guard rows >= 0, classes >= 1, s.count == rows * classes, t.count == s.count else {
        throw LossError.shapeMismatch("student and teacher logits need \(rows) x \(classes) values")
    }
    let T = Double(temperature)
    var total = 0.0
    var lp = [Double](repeating: 0, count: classes)
    var lq = lp
    for r in 0..<rows {
        let sr = UnsafeBufferPointer(rebasing: s[(r * classes)..<((r + 1) * classes)])
        let tr = UnsafeBufferPointer(rebasing: t[(r * classes)..<((r + 1) * classes)])
        for c in 0..<classes where !sr[c].isFinite || !tr[c].isFinite {
            throw LossError.nonFinite(
                input: sr[c].isFinite ? "teacher logits" : "student logits", row: r, column: c,
                value: sr[c].isFinite ? tr[c] : sr[c])
        }
        lq = logSoftmaxRow(sr, temperature: T)
        lp = logSoftmaxRow(tr, temperature: T)
        var ept = 0.0
        var eps = 0.0
        var eqs = 0.0
        var kl = 0.0
        for c in 0..<classes {
            let p = exp(lp[c])
            let q = exp(lq[c])
            ept += p * Double(tr[c])
            eps += p * Double(sr[c])
            eqs += q * Double(sr[c])
            if p > 0 { kl += p * (lp[c] - lq[c]) }
        }
        var cross = 0.0
        for c in 0..<classes {
            let p = exp(lp[c])
            if p > 0 { cross += p * (Double(tr[c]) - ept) * (lp[c] - lq[c]) }
        }
        let dKL = -(cross - (eps - eqs)) / (T * T)
        total += 2 * T * kl + T * T * dKL
    }
    return rows > 0 ? total / Double(rows) : 0
}
