#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Logit standardisation: the soft term compares z-scored logits, a per-example temperature.
///
/// Each row of student and teacher logits becomes `z = (x - mean(x)) / (std(x) + 1e-7)` (std with
/// Bessel's correction, as `torch.std`) before the temperature:
///
///     L = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(s, y)
///
/// The hard term sees the raw student logits. The gradient flows back through the
/// standardisation: with `g = dL/dz_s`, `sigma = std(s)`, `sigma' = sigma + 1e-7`,
///
///     dL/ds_j = (g_j - mean(g)) / sigma' - (s_j - mean(s)) * sum_i(g_i z_i) / ((C - 1) sigma sigma')
///
/// Reference: S. Sun, W. Ren, J. Li, R. Wang, X. Cao, "Logit Standardization in Knowledge
/// Distillation", CVPR 2024.
extension DistillationLoss {
    /// The loss with logit standardisation (objective `.kl`, teacher logits); as `evaluate`
    /// otherwise. Needs at least 2 classes.
    public func evaluateStandardized(
        studentLogits: UnsafeBufferPointer<Float>, teacherLogits: UnsafeBufferPointer<Float>,
        labels: UnsafeBufferPointer<Int32>? = nil, mask: UnsafeBufferPointer<Bool>? = nil,
        rows: Int, classes: Int, gradient: UnsafeMutableBufferPointer<Float>? = nil
    ) throws -> DistillationLossValue {
        guard objective == .kl else {
            throw LossError.shapeMismatch("logit standardisation applies to the kl objective")
        }
        guard classes >= 2 else {
            throw LossError.shapeMismatch(
                "logit standardisation needs at least 2 classes, got \(classes)")
        }
        guard studentLogits.count == rows * classes, teacherLogits.count == rows * classes else {
            throw LossError.shapeMismatch(
                "student and teacher logits need \(rows) x \(classes) values")
        }
        let (zs, sigmaS) = try standardize(
            studentLogits, rows: rows, classes: classes, what: "student logits")
        let (zt, _) = try standardize(
            teacherLogits, rows: rows, classes: classes, what: "teacher logits")
        // The soft term on standardised logits (alpha 1, the same rows and labels).
        let soft = try DistillationLoss(
            temperature: temperature, alpha: 1, objective: .kl, ignoreLabel: ignoreLabel)
        var softGradient = [Float](repeating: 0, count: rows * classes)
        let softValue = try zs.withUnsafeBufferPointer { s in
            try zt.withUnsafeBufferPointer { t in
                try softGradient.withUnsafeMutableBufferPointer { g in
                    try soft.evaluate(
                        studentLogits: s, teacher: .logits(t), labels: labels, mask: mask,
                        rows: rows, classes: classes, gradient: g)
                }
            }
        }
        // The hard term on the raw logits (alpha 0 weights only the cross-entropy).
        var hardValue: DistillationLossValue?
        var hardGradient = [Float](repeating: 0, count: rows * classes)
        if let labels, alpha < 1 {
            let hard = try DistillationLoss(
                temperature: 1, alpha: 0, objective: .kl, ignoreLabel: ignoreLabel,
                hardReduction: hardReduction)
            hardValue = try hardGradient.withUnsafeMutableBufferPointer { g in
                try hard.evaluate(
                    studentLogits: studentLogits, teacher: .logits(studentLogits), labels: labels,
                    mask: mask,
                    rows: rows, classes: classes, gradient: g)
            }
        }
        let labelled = (hardValue?.labelledRows ?? 0) > 0
        let effectiveAlpha = labelled ? alpha : 1
        if let gradient {
            for r in 0..<rows {
                let base = r * classes
                var meanG = 0.0
                var gz = 0.0
                for c in 0..<classes {
                    let g = Double(softGradient[base + c])
                    meanG += g
                    gz += g * Double(zs[base + c])
                }
                meanG /= Double(classes)
                let sigma = Double(sigmaS[r])
                let sigmaPrime = sigma + 1e-7
                for c in 0..<classes {
                    let centred = Double(zs[base + c]) * sigmaPrime  // s_c - mean(s)
                    let back =
                        (Double(softGradient[base + c]) - meanG) / sigmaPrime
                        - (sigma > 0
                            ? centred * gz / (Double(classes - 1) * sigma * sigmaPrime) : 0)
                    gradient[base + c] = Float(
                        Double(effectiveAlpha) * back
                            + (labelled
                                ? Double(1 - effectiveAlpha) * Double(hardGradient[base + c]) : 0))
                }
            }
        }
        let softTerm = Double(softValue.softLoss)
        let hardTerm = Double(hardValue?.hardLoss ?? 0)
        return DistillationLossValue(
            loss: Float(Double(effectiveAlpha) * softTerm + Double(1 - effectiveAlpha) * hardTerm),
            divergence: softValue.divergence, softLoss: softValue.softLoss,
            hardLoss: labelled ? hardValue?.hardLoss : nil,
            countedRows: softValue.countedRows, labelledRows: hardValue?.labelledRows ?? 0)
    }
}

/// Rows z-scored with `torch.std` (Bessel's correction) plus 1e-7, and each row's std.
func standardize(_ x: UnsafeBufferPointer<Float>, rows: Int, classes: Int, what: String) throws -> (
    z: [Float], sigma: [Float]
) {
    var z = [Float](repeating: 0, count: rows * classes)
    var sigmas = [Float](repeating: 0, count: rows)
    for r in 0..<rows {
        var mean = 0.0
        for c in 0..<classes {
            let v = x[r * classes + c]
            guard v.isFinite else {
                throw LossError.nonFinite(input: what, row: r, column: c, value: v)
            }
            mean += Double(v)
        }
        mean /= Double(classes)
        var variance = 0.0
        for c in 0..<classes {
            let d = Double(x[r * classes + c]) - mean
            variance += d * d
        }
        let sigma = (variance / Double(classes - 1)).squareRoot()
        sigmas[r] = Float(sigma)
        for c in 0..<classes {
            z[r * classes + c] = Float((Double(x[r * classes + c]) - mean) / (sigma + 1e-7))
        }
    }
    return (z, sigmas)
}
