import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax with temperature over each row of a `[rows, classes]` matrix:
/// `p_i = exp(z_i / T) / sum_j exp(z_j / T)`, computed as `exp((z_i - max z) / T) / sum`.
///
/// T = 1 is the ordinary softmax; T > 1 flattens the distribution, T < 1 sharpens it.
/// - Parameters:
///   - logits: `[rows, classes]`, row-major, finite.
///   - temperature: T, finite and > 0.
///   - probabilities: `[rows, classes]` output.
/// - Throws: `LossError` for non-finite logits, T <= 0, or mismatched sizes.
public func softmax(
    logits: UnsafeBufferPointer<Float>, rows: Int, classes: Int,
    temperature: Float = 1, into probabilities: UnsafeMutableBufferPointer<Float>
) throws {
    try rowwise(
        logits, rows: rows, classes: classes, temperature: temperature, output: probabilities
    ) {
        z, out, n, ms, invT in
        let msv = Vec(repeating: ms)
        let invTv = Vec(repeating: invT)
        var sum = 0.0
        var i = 0
        while i < n {
            let e = fastExp((load(z, i, n, pad: -.infinity) - msv) * invTv)
            store(e, out, i, n)
            sum += Double(horizontalSum(e))
            i += 8
        }
        let scale = Vec(repeating: Float(1 / sum))
        i = 0
        while i < n {
            store(load(out, i, n, pad: 0) * scale, out, i, n)
            i += 8
        }
    }
}

/// Log-softmax with temperature over each row: `z_i / T - logsumexp(z / T)`, computed as
/// `(z_i - max z) / T - log sum_j exp((z_j - max z) / T)` (never `log(softmax)`).
/// - Throws: `LossError` for non-finite logits, T <= 0, or mismatched sizes.
public func logSoftmax(
    logits: UnsafeBufferPointer<Float>, rows: Int, classes: Int,
    temperature: Float = 1, into logProbabilities: UnsafeMutableBufferPointer<Float>
) throws {
    try rowwise(
        logits, rows: rows, classes: classes, temperature: temperature, output: logProbabilities
    ) {
        z, out, n, ms, invT in
        let msv = Vec(repeating: ms)
        let invTv = Vec(repeating: invT)
        var sum = 0.0
        var i = 0
        while i < n {
            sum += Double(horizontalSum(fastExp((load(z, i, n, pad: -.infinity) - msv) * invTv)))
            i += 8
        }
        let logZ = Vec(repeating: Float(log(sum)))
        i = 0
        while i < n {
            store((load(z, i, n, pad: 0) - msv) * invTv - logZ, out, i, n)
            i += 8
        }
    }
}

/// Validates a row-wise transform and applies `body(row, outputRow, classes, rowMax, 1/T)`.
private func rowwise(
    _ logits: UnsafeBufferPointer<Float>, rows: Int, classes: Int, temperature: Float,
    output: UnsafeMutableBufferPointer<Float>,
    _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Float, Float) -> Void
) throws {
    guard temperature.isFinite, temperature > 0 else {
        throw LossError.invalidTemperature(temperature)
    }
    guard rows >= 0, classes >= 1, logits.count == rows * classes else {
        throw LossError.shapeMismatch("\(logits.count) logits for \(rows) x \(classes)")
    }
    guard output.count == logits.count else {
        throw LossError.shapeMismatch("output has \(output.count) values, expected \(logits.count)")
    }
    guard let z = logits.baseAddress, let out = output.baseAddress else { return }
    for r in 0..<rows {
        let row = z + r * classes
        let (ms, finite) = rowMaximum(row, classes)
        guard finite else { throw nonFinite("logits", row, row: r, classes: classes) }
        body(row, out + r * classes, classes, ms, 1 / temperature)
    }
}

/// Cross-entropy with integer labels at T = 1, `mean_rows(-log softmax(z)_y)`, and optionally its
/// gradient `(softmax(z) - onehot(y)) / N` (as `torch.nn.functional.cross_entropy`).
///
/// - Parameters:
///   - logits: `[rows, classes]`, row-major, finite.
///   - labels: `[rows]`, each in [0, classes) or equal to `ignoreLabel`.
///   - ignoreLabel: rows with this label count for nothing; N is the number of other rows.
///   - gradient: `[rows, classes]`, overwritten (zero on ignored rows).
/// - Returns: the mean loss (0 when no row counts).
/// - Throws: `LossError` for non-finite logits, labels out of range, mismatched sizes.
@discardableResult
public func crossEntropy(
    logits: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
    rows: Int, classes: Int, ignoreLabel: Int32? = nil,
    gradient: UnsafeMutableBufferPointer<Float>? = nil
) throws -> Float {
    guard rows >= 0, classes >= 1, logits.count == rows * classes else {
        throw LossError.shapeMismatch("\(logits.count) logits for \(rows) x \(classes)")
    }
    guard labels.count == rows else {
        throw LossError.shapeMismatch("\(labels.count) labels for \(rows) rows")
    }
    if let gradient, gradient.count != logits.count {
        throw LossError.shapeMismatch(
            "gradient has \(gradient.count) values, expected \(logits.count)")
    }
    var counted = 0
    for r in 0..<rows {
        let y = labels[r]
        if let ignoreLabel, y == ignoreLabel { continue }
        guard y >= 0, Int(y) < classes else {
            throw LossError.labelOutOfRange(row: r, label: Int(y), classes: classes)
        }
        counted += 1
    }
    guard let z = logits.baseAddress else { return 0 }
    let weight = Float(1 / Double(max(counted, 1)))
    let zBox = UncheckedSendable(z)
    let gBox = UncheckedSendable(gradient?.baseAddress)
    let totals = forEachRowChunk(rows: rows, classes: classes) { range in
        var totals = RowTotals()
        for r in range {
            let s = zBox.value + r * classes
            let g = gBox.value.map { $0 + r * classes }
            let y = labels[r]
            if let ignoreLabel, y == ignoreLabel {
                g?.update(repeating: 0, count: classes)
                continue
            }
            let (ms, finite) = rowMaximum(s, classes)
            guard finite else {
                totals.error = nonFinite("logits", s, row: r, classes: classes)
                return totals
            }
            let logZ = logPartitionRow(
                student: s, classes: classes, studentMaximum: ms,
                gradientScale: weight, gradient: g, accumulate: false)
            totals.hard += logZ - Double(s[Int(y)] - ms)
            g?[Int(y)] -= weight
        }
        return totals
    }
    if let error = totals.error { throw error }
    return counted > 0 ? Float(totals.hard / Double(counted)) : 0
}

/// `KL(softmax(t / T) || softmax(s / T))` averaged over rows ("batchmean"), and optionally its
/// gradient with respect to the student logits, `(q - p) / (T N)`.
///
/// This is the bare divergence, without the `T^2` factor of the distillation loss
/// (`torch.nn.functional.kl_div(log_softmax(s / T), softmax(t / T), reduction="batchmean")`).
/// - Throws: `LossError` for non-finite logits, T <= 0, mismatched sizes.
@discardableResult
public func klDivergence(
    teacherLogits: UnsafeBufferPointer<Float>, studentLogits: UnsafeBufferPointer<Float>,
    rows: Int, classes: Int, temperature: Float,
    gradient: UnsafeMutableBufferPointer<Float>? = nil
) throws -> Float {
    guard temperature.isFinite, temperature > 0 else {
        throw LossError.invalidTemperature(temperature)
    }
    guard rows >= 0, classes >= 1, studentLogits.count == rows * classes else {
        throw LossError.shapeMismatch(
            "\(studentLogits.count) student logits for \(rows) x \(classes)")
    }
    guard teacherLogits.count == studentLogits.count else {
        throw LossError.shapeMismatch(
            "teacher logits have \(teacherLogits.count) values, student logits \(studentLogits.count)"
        )
    }
    if let gradient, gradient.count != studentLogits.count {
        throw LossError.shapeMismatch(
            "gradient has \(gradient.count) values, expected \(studentLogits.count)")
    }
    guard let s0 = studentLogits.baseAddress, let t0 = teacherLogits.baseAddress else { return 0 }
    let invT = 1 / temperature
    let weight = Float(1 / (Double(temperature) * Double(max(rows, 1))))
    let sBox = UncheckedSendable(s0)
    let tBox = UncheckedSendable(t0)
    let gBox = UncheckedSendable(gradient?.baseAddress)
    let totals = forEachRowChunk(rows: rows, classes: classes) { range in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * classes) { scratch in
            var totals = RowTotals()
            for r in range {
                let s = sBox.value + r * classes
                let t = tBox.value + r * classes
                let (ms, sFinite) = rowMaximum(s, classes)
                guard sFinite else {
                    totals.error = nonFinite("student logits", s, row: r, classes: classes)
                    return totals
                }
                let (mt, tFinite) = rowMaximum(t, classes)
                guard tFinite else {
                    totals.error = nonFinite("teacher logits", t, row: r, classes: classes)
                    return totals
                }
                totals.soft +=
                    softRow(
                        student: s, teacher: t, classes: classes, inverseTemperature: invT,
                        teacherScale: invT, studentMaximum: ms, teacherMaximum: mt, label: -1,
                        softWeight: weight, hardWeight: 0,
                        gradient: gBox.value.map { $0 + r * classes }, scratch: scratch.baseAddress!
                    ).kl
            }
            return totals
        }
    }
    if let error = totals.error { throw error }
    return rows > 0 ? Float(totals.soft / Double(rows)) : 0
}

/// `log softmax(x / T)` of one row in Double: `(x_i - max x) / T - log sum_j exp((x_j - max x) / T)`.
/// An entry of `-inf` (a probability of 0, as `log p` gives) stays `-inf`; the row needs one finite
/// entry. The exact, unvectorised form for the paths that are not hot: ensembles, the temperature
/// gradient, explanations and evaluation.
public func logSoftmaxRow<Row: Collection>(_ x: Row, temperature: Double = 1) -> [Double]
where Row.Element == Float {
    let m = Double(x.lazy.filter(\.isFinite).max() ?? 0)
    var sum = 0.0
    for v in x where v.isFinite { sum += exp((Double(v) - m) / temperature) }
    let logSum = log(sum)
    return x.map { $0.isFinite ? (Double($0) - m) / temperature - logSum : -.infinity }
}
