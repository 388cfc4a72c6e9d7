import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decoupled knowledge distillation's weights (Zhao et al., CVPR 2022): `alpha` on the target
/// class's binary KL, `beta` on the KL among the other classes (the paper's defaults, 1 and 8).
public struct DKDWeights: Sendable, Equatable {
    public var alpha: Float
    public var beta: Float
    public init(alpha: Float = 1, beta: Float = 8) { (self.alpha, self.beta) = (alpha, beta) }
}

/// DIST's weights (Huang et al., NeurIPS 2022): `beta` on the inter-class relation (each
/// example's distribution), `gamma` on the intra-class one (each class across the batch); the
/// paper's code defaults to 1 and 1.
public struct DISTWeights: Sendable, Equatable {
    public var beta: Float
    public var gamma: Float
    public init(beta: Float = 1, gamma: Float = 1) { (self.beta, self.gamma) = (beta, gamma) }
}

/// The DKD soft term of `rows` rows, `T^2 (alpha TCKD + beta NCKD)` averaged over them, and its
/// gradient with respect to the student logits (added into `gradient` times `scale`).
///
/// With `p = softmax(t / T)`, `q = softmax(s / T)` and the row's target class `y`:
///
///     TCKD = p_y log(p_y / q_y) + (1 - p_y) log((1 - p_y) / (1 - q_y))
///     NCKD = sum_{j != y} p^_j log(p^_j / q^_j),   p^_j = p_j / (1 - p_y), q^ likewise
///     d/ds_k (T^2 TCKD) = T (q_y - p_y) (1 if k = y, else -q^_k)
///     d/ds_k (T^2 NCKD) = T (q^_k - p^_k) for k != y, 0 for k = y
///
/// The target is the row's label, or the teacher's top class for a row without one.
/// Computed in Double.
func dkdSoftTerm(
    student: UnsafePointer<Float>, teacher: UnsafePointer<Float>, targets: [Int], rows: [Int],
    classes: Int, temperature: Float, weights: DKDWeights, scale: Double,
    gradient: UnsafeMutablePointer<Float>?
) -> Double {
    let T = Double(temperature)
    var total = 0.0
    for r in rows {
        let y = targets[r]
        let p = softmaxRow(teacher + r * classes, classes, T)
        let q = softmaxRow(student + r * classes, classes, T)
        let (py, qy) = (min(p[y], 1 - 1e-12), min(q[y], 1 - 1e-12))
        var tckd = 0.0
        if py > 0 { tckd += py * log(py / qy) }
        tckd += (1 - py) * log((1 - py) / (1 - qy))
        var nckd = 0.0
        for j in 0..<classes where j != y && p[j] > 0 {
            nckd += p[j] / (1 - py) * log((p[j] / (1 - py)) / (q[j] / (1 - qy)))
        }
        total += T * T * (Double(weights.alpha) * tckd + Double(weights.beta) * nckd)
        guard let gradient else { continue }
        let g = gradient + r * classes
        for k in 0..<classes {
            let target =
                k == y ? qy - py : -(qy - py) * q[k] / (1 - qy)
            let other = k == y ? 0 : q[k] / (1 - qy) - p[k] / (1 - py)
            g[k] += Float(
                scale * T * (Double(weights.alpha) * target + Double(weights.beta) * other))
        }
    }
    return total / Double(max(rows.count, 1))
}

/// The DIST soft term, `T^2 (beta (1 - mean_i rho(q_i, p_i)) + gamma (1 - mean_j rho(q_:j, p_:j)))`
/// over the counted `rows` (rows i, classes j of `q = softmax(s / T)` and `p = softmax(t / T)`;
/// `rho` Pearson's correlation, the cosine of the centred vectors with 1e-8 added to the product
/// of their norms, as the paper's code), and its gradient into `gradient` times `scale`. The
/// intra-class term couples the rows: it is a property of the batch. Computed in Double.
func distSoftTerm(
    student: UnsafePointer<Float>, teacher: UnsafePointer<Float>, rows: [Int], classes: Int,
    temperature: Float, weights: DISTWeights, scale: Double,
    gradient: UnsafeMutablePointer<Float>?
) -> Double {
    let T = Double(temperature)
    let n = rows.count
    guard n > 0 else { return 0 }
    let q = rows.map { softmaxRow(student + $0 * classes, classes, T) }
    let p = rows.map { softmaxRow(teacher + $0 * classes, classes, T) }
    // dL/dq, then through each row's softmax.
    var dq = [[Double]](repeating: [Double](repeating: 0, count: classes), count: n)
    var inter = 0.0
    for i in 0..<n {
        let (rho, d) = pearson(q[i], p[i])
        inter += rho
        for j in 0..<classes { dq[i][j] -= Double(weights.beta) * d[j] / Double(n) }
    }
    var intra = 0.0
    for j in 0..<classes {
        let (rho, d) = pearson(q.map { $0[j] }, p.map { $0[j] })
        intra += rho
        for i in 0..<n { dq[i][j] -= Double(weights.gamma) * d[i] / Double(classes) }
    }
    let value =
        T * T
        * (Double(weights.beta) * (1 - inter / Double(n))
            + Double(weights.gamma) * (1 - intra / Double(classes)))
    if let gradient {
        for (i, r) in rows.enumerated() {
            // d/ds = (1/T) * q (dq - q . dq), times T^2.
            var dot = 0.0
            for j in 0..<classes { dot += q[i][j] * dq[i][j] }
            for j in 0..<classes {
                gradient[r * classes + j] += Float(scale * T * q[i][j] * (dq[i][j] - dot))
            }
        }
    }
    return value
}

/// Pearson's correlation of `a` and `b` and its gradient with respect to `a`.
private func pearson(_ a: [Double], _ b: [Double]) -> (Double, [Double]) {
    let count = Double(a.count)
    let (ma, mb) = (a.reduce(0, +) / count, b.reduce(0, +) / count)
    let u = a.map { $0 - ma }
    let v = b.map { $0 - mb }
    let (nu, nv) = (
        u.reduce(0) { $0 + $1 * $1 }.squareRoot(), v.reduce(0) { $0 + $1 * $1 }.squareRoot()
    )
    let denominator = nu * nv + 1e-8
    let dot = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
    let rho = dot / denominator
    // d rho / du = v / den - dot nv u / (nu den^2); centring removes the mean of it.
    var d = (0..<a.count).map { k in
        v[k] / denominator - (nu > 0 ? dot * nv * u[k] / (nu * denominator * denominator) : 0)
    }
    let mean = d.reduce(0, +) / count
    for k in d.indices { d[k] -= mean }
    return (rho, d)
}

/// `softmax(x / T)` of one row, in Double.
private func softmaxRow(_ x: UnsafePointer<Float>, _ classes: Int, _ T: Double) -> [Double] {
    var m = -Double.infinity
    for j in 0..<classes { m = max(m, Double(x[j])) }
    var e = (0..<classes).map { exp((Double(x[$0]) - m) / T) }
    let sum = e.reduce(0, +)
    for j in e.indices { e[j] /= sum }
    return e
}

extension DistillationLoss {
    /// The loss with the `.dkd` or `.dist` objective: `alpha * soft + (1 - alpha) * CE(s, y)`,
    /// the soft term from `dkdSoftTerm` or `distSoftTerm` over the counted rows, the hard term as
    /// for `.kl` (its reduction included; alpha taken as 1 when no counted row has a label).
    func evaluateRelational(
        studentLogits: UnsafeBufferPointer<Float>, teacherLogits: UnsafeBufferPointer<Float>,
        labels: UnsafeBufferPointer<Int32>?, mask: UnsafeBufferPointer<Bool>?, rows: Int,
        classes: Int, gradient: UnsafeMutableBufferPointer<Float>?
    ) throws -> DistillationLossValue {
        guard studentLogits.count == rows * classes, teacherLogits.count == rows * classes else {
            throw LossError.shapeMismatch(
                "student and teacher logits need \(rows) x \(classes) values")
        }
        guard classes >= 2 else {
            throw LossError.shapeMismatch("\(objective) needs at least 2 classes")
        }
        for (input, values) in [
            ("student logits", studentLogits), ("teacher logits", teacherLogits),
        ] {
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw LossError.nonFinite(
                    input: input, row: i / classes, column: i % classes, value: values[i])
            }
        }
        // The hard term from the kl loss with alpha 0 (its gradient weighed below).
        var hardValue: DistillationLossValue?
        if labels != nil {
            let hard = try DistillationLoss(
                temperature: 1, alpha: 0, objective: .kl, ignoreLabel: ignoreLabel,
                hardReduction: hardReduction)
            hardValue = try hard.evaluate(
                studentLogits: studentLogits, teacher: .logits(studentLogits), labels: labels,
                mask: mask, rows: rows, classes: classes, gradient: gradient)
        } else if let gradient {
            for i in 0..<gradient.count { gradient[i] = 0 }
        }
        let counted = (0..<rows).filter { r in
            if let mask, !mask[r] { return false }
            if let labels, let ignoreLabel, labels[r] == ignoreLabel { return false }
            return true
        }
        let labelled = (hardValue?.labelledRows ?? 0) > 0
        let effectiveAlpha = Double(labelled ? alpha : 1)
        if let gradient {
            for i in 0..<gradient.count { gradient[i] *= Float(1 - effectiveAlpha) }
        }
        let (s, t) = (studentLogits.baseAddress!, teacherLogits.baseAddress!)
        let soft: Double
        switch objective {
        case .dkd:
            let targets = (0..<rows).map { r -> Int in
                if let labels, labels[r] >= 0, Int(labels[r]) < classes { return Int(labels[r]) }
                return indexOfMaximum(t + r * classes, count: classes)
            }
            soft = dkdSoftTerm(
                student: s, teacher: t, targets: targets, rows: counted, classes: classes,
                temperature: temperature, weights: dkd,
                scale: effectiveAlpha / Double(max(counted.count, 1)),
                gradient: gradient?.baseAddress)
        default:
            soft = distSoftTerm(
                student: s, teacher: t, rows: counted, classes: classes, temperature: temperature,
                weights: dist, scale: effectiveAlpha, gradient: gradient?.baseAddress)
        }
        let hardLoss = labelled ? Double(hardValue?.loss ?? 0) : 0
        return DistillationLossValue(
            loss: Float(effectiveAlpha * soft + (1 - effectiveAlpha) * hardLoss),
            divergence: Float(soft / Double(temperature * temperature)), softLoss: Float(soft),
            hardLoss: hardValue?.hardLoss, countedRows: counted.count,
            labelledRows: hardValue?.labelledRows ?? 0)
    }
}
