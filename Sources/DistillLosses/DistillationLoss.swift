import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The knowledge-distillation loss of Hinton et al., with its variants, as one pure function that
/// returns the value, its named terms and the gradient with respect to the student logits.
///
/// For student logits `s`, teacher soft targets `p = softmax(t / T)`, student soft predictions
/// `q = softmax(s / T)` and label `y`, per row:
///
///     L = alpha * T^2 * KL(p || q) + (1 - alpha) * CE(s, y)
///     dL/ds = alpha * T * (q - p) + (1 - alpha) * (softmax(s) - onehot(y))
///
/// reduced as a mean over the rows that count ("batchmean"): the soft term over every counted
/// row, the hard term over the counted rows that have a label (`hardReduction` `.labelled`, the
/// default) or over every counted row (`.all`: the sum over labelled rows divided by all counted
/// rows). `T^2` keeps the soft term's
/// gradient on the scale of the hard term's whatever T is (for large T,
/// `T * (q - p) ~ (s - t - mean(s - t)) / (C T)`, so `T^2 * KL`'s gradient tends to
/// `(s - t - mean(s - t)) / C`).
///
/// Objectives (`objective`):
/// - `.kl`: the loss above.
/// - `.hard`: hard distillation, `alpha * CE(s, argmax t) + (1 - alpha) * CE(s, y)` (no temperature).
/// - `.mse`: logit matching, `alpha * mean_i (s_i - t_i)^2 + (1 - alpha) * CE(s, y)`, the
///   high-temperature limit of the soft term (as `torch.nn.functional.mse_loss`).
/// - `.dkd`, `.dist`: decoupled KD and DIST as the soft term (`dkdSoftTerm`, `distSoftTerm`).
///
/// Rows and labels:
/// - a row whose `mask` entry is false, or whose label equals `ignoreLabel`, counts for nothing;
/// - a row whose label is `DistillationLoss.noLabel` (-1) has no label: it counts for the soft
///   term only (an unlabelled transfer set). When no counted row of the batch has a label, the
///   loss is the soft term alone (alpha is taken as 1), as in the few-label recipe.
///
/// The loss and gradient are finite for any finite logits and any finite T > 0. Inputs that are
/// not finite, T <= 0, alpha outside [0, 1], labels outside [0, C) and mismatched sizes throw a
/// `LossError`. The work is split over the cores by rows when `rows * classes >= 65,536`.
///
/// Reference: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
/// arXiv:1503.02531, 2015.
public struct DistillationLoss: Sendable, Equatable {
    /// What the soft term compares.
    public enum Objective: String, Sendable, CaseIterable {
        /// `T^2 * KL(softmax(t / T) || softmax(s / T))`.
        case kl
        /// Cross-entropy against the teacher's argmax.
        case hard
        /// Mean squared error between the logits.
        case mse
        /// Decoupled KD: target-class and non-target-class KL, weighted by `dkd`.
        case dkd
        /// DIST: inter- and intra-class Pearson correlations, weighted by `dist`.
        case dist
    }

    /// The rows the hard term's mean is taken over.
    public enum HardReduction: String, Sendable, CaseIterable {
        /// The counted rows that have a label: each labelled row weighs as much as the labels
        /// are few (with 5 labelled rows in a batch of 128, 25 times an unlabelled row's share).
        case labelled
        /// Every counted row, labelled or not: the hard term is summed over the labelled rows and
        /// divided by all counted rows, so every row of the batch weighs alike.
        case all
    }

    /// The label value that marks a row without a label (soft term only).
    public static let noLabel: Int32 = -1

    /// The temperature T (> 0). Unused by `.hard` and `.mse`.
    public let temperature: Float
    /// The weight of the soft term, in [0, 1].
    public let alpha: Float
    /// What the soft term compares.
    public let objective: Objective
    /// A label value marking padding rows that count for nothing (e.g. -100, as in PyTorch).
    public let ignoreLabel: Int32?
    /// Whether the soft term compares z-scored logits (`evaluateStandardized`; Sun et al., CVPR
    /// 2024). Needs teacher logits and the `.kl` objective.
    public let logitStandardization: Bool
    /// Over which rows the hard term is a mean (`.labelled` by default).
    public let hardReduction: HardReduction
    /// A factor on the `.kl` objective's soft term, `softScale * T^2 * KL` (1: Hinton's loss; 4
    /// to 8 is the "scaled KD" baseline that decoupled objectives are compared with).
    public var softScale: Float = 1
    /// The weights of the `.dkd` objective's two terms.
    public var dkd = DKDWeights()
    /// The weights of the `.dist` objective's two terms.
    public var dist = DISTWeights()
    /// Whether few classes go through the lane kernel (tests turn it off to check the row kernel
    /// on the same cases).
    var usesLaneKernel = true

    /// - Throws: `LossError.invalidTemperature` unless T is finite and > 0;
    ///   `LossError.invalidAlpha` unless 0 <= alpha <= 1.
    public init(
        temperature: Float = 4, alpha: Float = 0.7, objective: Objective = .kl,
        ignoreLabel: Int32? = nil, logitStandardization: Bool = false,
        hardReduction: HardReduction = .labelled
    ) throws {
        guard temperature.isFinite, temperature > 0 else {
            throw LossError.invalidTemperature(temperature)
        }
        guard alpha >= 0, alpha <= 1 else { throw LossError.invalidAlpha(alpha) }
        self.temperature = temperature
        self.alpha = alpha
        self.objective = objective
        self.ignoreLabel = ignoreLabel
        self.logitStandardization = logitStandardization
        self.hardReduction = hardReduction
        if logitStandardization && objective != .kl {
            throw LossError.shapeMismatch("logit standardisation applies to the kl objective")
        }
    }

    /// Whether the soft term carries a weight that `scalingSoftTerm(by:)` can scale: `softScale`
    /// for `.kl`, the two weights of `.dkd` and of `.dist` (not `.hard` or `.mse`).
    public var softTermIsWeighted: Bool {
        objective == .kl || objective == .dkd || objective == .dist
    }

    /// The same loss with its soft term multiplied by `factor` (>= 0), the hard term unchanged:
    /// `softScale`, or both `.dkd` or `.dist` weights, times `factor`. A warm-up of the soft term
    /// (the DKD recipe's) ramps `factor` from near 0 to 1 over the first steps of a run.
    public func scalingSoftTerm(by factor: Float) -> DistillationLoss {
        guard factor != 1 else { return self }
        precondition(softTermIsWeighted && factor >= 0 && factor.isFinite)
        var loss = self
        loss.softScale *= factor
        loss.dkd = DKDWeights(alpha: dkd.alpha * factor, beta: dkd.beta * factor)
        loss.dist = DISTWeights(beta: dist.beta * factor, gamma: dist.gamma * factor)
        return loss
    }

    /// The same loss with the soft term weighted by `alpha` (in [0, 1]): 1 gives the soft term
    /// alone, 0 the hard term alone (on rows with labels; the soft term when none has one).
    /// - Throws: `LossError.invalidAlpha` unless 0 <= alpha <= 1.
    public func with(alpha: Float) throws -> DistillationLoss {
        try with(temperature: temperature, alpha: alpha)
    }

    /// The same loss at temperature `temperature` (schedules and learned temperatures).
    /// - Throws: `LossError.invalidTemperature` unless it is finite and > 0.
    public func with(temperature: Float) throws -> DistillationLoss {
        try with(temperature: temperature, alpha: alpha)
    }

    /// The same loss, every other setting kept, at `temperature` and `alpha`.
    private func with(temperature: Float, alpha: Float) throws -> DistillationLoss {
        var loss = try DistillationLoss(
            temperature: temperature, alpha: alpha, objective: objective, ignoreLabel: ignoreLabel,
            logitStandardization: logitStandardization, hardReduction: hardReduction)
        loss.usesLaneKernel = usesLaneKernel
        (loss.dkd, loss.dist, loss.softScale) = (dkd, dist, softScale)
        return loss
    }

    /// Computes the loss of a batch and, if `gradient` is given, `dL/ds` into it.
    ///
    /// - Parameters:
    ///   - studentLogits: `[rows, classes]`, row-major.
    ///   - teacher: the teacher's outputs for the same rows, `[rows, classes]` each.
    ///   - labels: `[rows]` class indices, `noLabel`, or `ignoreLabel`; required when alpha < 1.
    ///   - mask: `[rows]`; false rows count for nothing.
    ///   - gradient: `[rows, classes]`; overwritten with `dL/ds` (zero on rows that do not count).
    /// - Returns: the loss and its terms.
    /// - Throws: `LossError`; the gradient's contents are then unspecified.
    public func evaluate(
        studentLogits: UnsafeBufferPointer<Float>,
        teacher: TeacherOutput,
        labels: UnsafeBufferPointer<Int32>? = nil,
        mask: UnsafeBufferPointer<Bool>? = nil,
        rows: Int, classes: Int,
        gradient: UnsafeMutableBufferPointer<Float>? = nil
    ) throws -> DistillationLossValue {
        if logitStandardization {
            guard case .logits(let t) = teacher else {
                throw LossError.shapeMismatch(
                    "logit standardisation needs teacher logits (one teacher)")
            }
            return try evaluateStandardized(
                studentLogits: studentLogits, teacherLogits: t, labels: labels, mask: mask,
                rows: rows, classes: classes, gradient: gradient)
        }
        if objective == .dkd || objective == .dist {
            guard case .logits(let t) = teacher else {
                throw LossError.shapeMismatch("objective \(objective) needs dense teacher logits")
            }
            try checkShapes(
                rows: rows, classes: classes, student: studentLogits.count,
                labels: labels?.count, mask: mask?.count, gradient: gradient?.count)
            if labels == nil && alpha < 1 { throw LossError.labelsRequired }
            return try evaluateRelational(
                studentLogits: studentLogits, teacherLogits: t, labels: labels, mask: mask,
                rows: rows, classes: classes, gradient: gradient)
        }
        let count = rows * classes
        try checkShapes(
            rows: rows, classes: classes, student: studentLogits.count,
            labels: labels?.count, mask: mask?.count, gradient: gradient?.count)
        if labels == nil && alpha < 1 { throw LossError.labelsRequired }
        let counted = try countRows(rows: rows, classes: classes, labels: labels, mask: mask)
        return try withTeacherRows(teacher, student: studentLogits, rows: rows, classes: classes) {
            teacherRows, scale, check in
            guard count > 0, let student = studentLogits.baseAddress, let teacherRows else {
                return DistillationLossValue(
                    loss: 0, divergence: 0, softLoss: 0, hardLoss: nil,
                    countedRows: 0, labelledRows: 0)
            }
            return try run(
                student: student, teacher: teacherRows, teacherScale: scale,
                checkTeacher: check, labels: labels, mask: mask, rows: rows,
                classes: classes, counted: counted, gradient: gradient?.baseAddress)
        }
    }

    /// Calls `body` with the teacher's rows in the log domain, the scale to apply to them before
    /// the softmax, and whether they still need the finiteness check.
    private func withTeacherRows<R>(
        _ teacher: TeacherOutput, student: UnsafeBufferPointer<Float>, rows: Int, classes: Int,
        _ body: (UnsafePointer<Float>?, Float, Bool) throws -> R
    ) throws -> R {
        let count = rows * classes
        switch teacher {
        case .logits(let t):
            guard t.count == count else {
                throw LossError.shapeMismatch(
                    "teacher logits have \(t.count) values, student logits \(count)")
            }
            return try body(t.baseAddress, 1 / temperature, true)
        case .probabilities(let p):
            guard objective == .kl else {
                throw LossError.shapeMismatch(
                    "objective \(objective) needs teacher logits, not probabilities")
            }
            let logP = try logProbabilities(p, rows: rows, classes: classes)
            return try logP.withUnsafeBufferPointer {
                try body($0.baseAddress, 1 / temperature, false)
            }
        case .ensembleLogits(let members):
            guard objective == .kl else {
                throw LossError.shapeMismatch("objective \(objective) needs a single teacher")
            }
            let logP = try ensembleLogProbabilities(
                members, rows: rows, classes: classes, temperature: temperature
            ).map(Float.init)
            return try logP.withUnsafeBufferPointer { try body($0.baseAddress, 1, false) }
        case .topKLogProbabilities(let t):
            guard objective == .kl || objective == .hard else {
                throw LossError.shapeMismatch("objective \(objective) needs dense teacher logits")
            }
            // The hard objective's argmax is the largest known class: the rows as they are.
            if objective == .hard { return try body(t.baseAddress, 1, false) }
            let logP = try restBucketLogTargets(
                t, student: student, rows: rows, classes: classes, temperature: temperature)
            return try logP.withUnsafeBufferPointer { try body($0.baseAddress, 1, false) }
        }
    }

    private func checkShapes(
        rows: Int, classes: Int, student: Int, labels: Int?, mask: Int?,
        gradient: Int?
    ) throws {
        guard rows >= 0, classes >= 1 else {
            throw LossError.shapeMismatch(
                "need rows >= 0 and classes >= 1, got [\(rows), \(classes)]")
        }
        let count = rows * classes
        guard student == count else {
            throw LossError.shapeMismatch(
                "student logits have \(student) values, expected \(rows) x \(classes)")
        }
        if let labels, labels != rows {
            throw LossError.shapeMismatch("\(labels) labels for \(rows) rows")
        }
        if let mask, mask != rows {
            throw LossError.shapeMismatch("\(mask) mask entries for \(rows) rows")
        }
        if let gradient, gradient != count {
            throw LossError.shapeMismatch("gradient has \(gradient) values, expected \(count)")
        }
    }

    /// Validates labels and counts the rows that count (`soft`) and those with a label (`hard`).
    private func countRows(
        rows: Int, classes: Int, labels: UnsafeBufferPointer<Int32>?,
        mask: UnsafeBufferPointer<Bool>?
    ) throws -> (soft: Int, hard: Int) {
        var soft = 0
        var hard = 0
        for r in 0..<rows {
            if let mask, !mask[r] { continue }
            guard let labels else {
                soft += 1
                continue
            }
            let y = labels[r]
            if let ignoreLabel, y == ignoreLabel { continue }
            soft += 1
            if y == DistillationLoss.noLabel { continue }
            guard y >= 0, Int(y) < classes else {
                throw LossError.labelOutOfRange(row: r, label: Int(y), classes: classes)
            }
            hard += 1
        }
        return (soft, hard)
    }

    /// The row label the kernels see: a class index, or -1 (no hard term), or -2 (row skipped).
    @inline(__always)
    private func rowLabel(
        _ r: Int, labels: UnsafeBufferPointer<Int32>?, mask: UnsafeBufferPointer<Bool>?
    ) -> Int {
        if let mask, !mask[r] { return -2 }
        guard let labels else { return -1 }
        let y = labels[r]
        if let ignoreLabel, y == ignoreLabel { return -2 }
        return Int(y)
    }

    private func run(
        student: UnsafePointer<Float>, teacher: UnsafePointer<Float>, teacherScale: Float,
        checkTeacher: Bool, labels: UnsafeBufferPointer<Int32>?, mask: UnsafeBufferPointer<Bool>?,
        rows: Int, classes: Int, counted: (soft: Int, hard: Int),
        gradient: UnsafeMutablePointer<Float>?
    ) throws -> DistillationLossValue {
        let effectiveAlpha = counted.hard > 0 ? alpha : 1
        let softRows = max(counted.soft, 1)
        let hardRows = max(hardReduction == .all ? counted.soft : counted.hard, 1)
        let T = temperature
        // Per-row gradient weights (the batch mean is folded in).
        let softWeight: Float
        switch objective {
        case .kl:
            softWeight = Float(
                Double(effectiveAlpha) * Double(softScale) * Double(T) / Double(softRows))
        case .hard, .mse, .dkd, .dist:
            softWeight = Float(Double(effectiveAlpha) / Double(softRows))
        }
        let hardWeight = Float(Double(1 - effectiveAlpha) / Double(hardRows))
        let objective = self.objective
        let invT = 1 / T
        let studentBox = UncheckedSendable(student)
        let teacherBox = UncheckedSendable(teacher)
        let gradientBox = UncheckedSendable(gradient)
        if objective == .kl && classes <= laneKernelClassLimit && usesLaneKernel {
            let totals = runInLanes(
                student: student, teacher: teacher, teacherScale: teacherScale,
                checkTeacher: checkTeacher,
                labels: labels, mask: mask, rows: rows, classes: classes, softWeight: softWeight,
                hardWeight: hardWeight, gradient: gradient)
            if let error = totals.error { throw error }
            return value(totals: totals, counted: counted, effectiveAlpha: effectiveAlpha)
        }
        let totals = forEachRowChunk(rows: rows, classes: classes) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * classes) { scratchBuffer in
                let scratch = scratchBuffer.baseAddress!
                var totals = RowTotals()
                let student = studentBox.value
                let teacher = teacherBox.value
                let gradient = gradientBox.value
                for r in range {
                    let s = student + r * classes
                    let t = teacher + r * classes
                    let g = gradient.map { $0 + r * classes }
                    let label = rowLabel(r, labels: labels, mask: mask)
                    if label == -2 {
                        g?.update(repeating: 0, count: classes)
                        continue
                    }
                    let (ms, studentFinite, mt, teacherFinite) = rowMaxima(s, t, classes)
                    if !studentFinite {
                        totals.error = nonFinite("student logits", s, row: r, classes: classes)
                        return totals
                    }
                    if checkTeacher && !teacherFinite {
                        totals.error = nonFinite("teacher logits", t, row: r, classes: classes)
                        return totals
                    }
                    let rowHardWeight = label >= 0 ? hardWeight : 0
                    switch objective {
                    case .kl:
                        let (kl, ce) = softRow(
                            student: s, teacher: t, classes: classes, inverseTemperature: invT,
                            teacherScale: teacherScale, studentMaximum: ms, teacherMaximum: mt,
                            label: label, softWeight: softWeight, hardWeight: rowHardWeight,
                            gradient: g,
                            scratch: scratch)
                        totals.soft += kl
                        totals.hard += ce
                    case .hard:
                        let teacherClass = indexOfMaximum(t, count: classes)
                        let logZ = logPartitionRow(
                            student: s, classes: classes, studentMaximum: ms,
                            gradientScale: softWeight + rowHardWeight,
                            gradient: g, accumulate: false)
                        totals.soft += logZ - Double(s[teacherClass] - ms)
                        g?[teacherClass] -= softWeight
                        if label >= 0 {
                            totals.hard += logZ - Double(s[label] - ms)
                            g?[label] -= rowHardWeight
                        }
                    case .dkd, .dist:
                        preconditionFailure("evaluateRelational computes \(objective)")
                    case .mse:
                        totals.soft += squaredErrorRow(
                            student: s, teacher: t, classes: classes,
                            gradientScale: softWeight, gradient: g)
                        if label >= 0 {
                            let logZ = logPartitionRow(
                                student: s, classes: classes, studentMaximum: ms,
                                gradientScale: rowHardWeight, gradient: g,
                                accumulate: true)
                            totals.hard += logZ - Double(s[label] - ms)
                            g?[label] -= rowHardWeight
                        }
                    }
                }
                return totals
            }
        }
        if let error = totals.error { throw error }
        return value(totals: totals, counted: counted, effectiveAlpha: effectiveAlpha)
    }

    /// The loss value from the summed terms.
    private func value(totals: RowTotals, counted: (soft: Int, hard: Int), effectiveAlpha: Float)
        -> DistillationLossValue
    {
        let T = temperature
        let meanSoft = counted.soft > 0 ? totals.soft / Double(counted.soft) : 0
        let hardRows = hardReduction == .all ? counted.soft : counted.hard
        let meanHard = counted.hard > 0 ? totals.hard / Double(hardRows) : 0
        let softTerm =
            objective == .kl ? Double(softScale) * Double(T) * Double(T) * meanSoft : meanSoft
        let total = Double(effectiveAlpha) * softTerm + Double(1 - effectiveAlpha) * meanHard
        return DistillationLossValue(
            loss: Float(total), divergence: Float(meanSoft), softLoss: Float(softTerm),
            hardLoss: counted.hard > 0 ? Float(meanHard) : nil,
            countedRows: counted.soft, labelledRows: counted.hard)
    }

    /// The `.kl` objective for few classes: eight rows per vector (`softRowsInLanes`).
    private func runInLanes(
        student: UnsafePointer<Float>, teacher: UnsafePointer<Float>, teacherScale: Float,
        checkTeacher: Bool,
        labels: UnsafeBufferPointer<Int32>?, mask: UnsafeBufferPointer<Bool>?, rows: Int,
        classes: Int,
        softWeight: Float, hardWeight: Float, gradient: UnsafeMutablePointer<Float>?
    ) -> RowTotals {
        let groups = (rows + 7) / 8
        let invT = 1 / temperature
        let studentBox = UncheckedSendable(student)
        let teacherBox = UncheckedSendable(teacher)
        let gradientBox = UncheckedSendable(gradient)
        return forEachRowChunk(rows: groups, classes: 8 * classes) { range in
            withUnsafeTemporaryAllocation(of: Vec.self, capacity: 5 * classes) { scratch in
                var totals = RowTotals()
                for group in range {
                    let first = group * 8
                    let count = min(8, rows - first)
                    // Per-lane row indices (lanes past the last row repeat the group's first row),
                    // labels and weights, built with constant lane indices and masks: no lane is
                    // written through memory.
                    let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
                    let valid = lane .< SIMD8<Int32>(repeating: Int32(count))
                    let rowIndex = (SIMD8<Int32>(repeating: Int32(first)) &+ lane).replacing(
                        with: Int32(first), where: .!valid)
                    let offsets = rowIndex &* Int32(classes)
                    var active = valid
                    var laneLabels = SIMD8<Int32>(repeating: -1)
                    if let labels {
                        let l = labels.baseAddress!
                        laneLabels = SIMD8<Int32>(
                            l[Int(rowIndex[0])], l[Int(rowIndex[1])], l[Int(rowIndex[2])],
                            l[Int(rowIndex[3])],
                            l[Int(rowIndex[4])], l[Int(rowIndex[5])], l[Int(rowIndex[6])],
                            l[Int(rowIndex[7])])
                        if let ignoreLabel {
                            active = active .& (laneLabels .!= SIMD8<Int32>(repeating: ignoreLabel))
                        }
                    }
                    if let mask {
                        let m = mask.baseAddress!
                        let kept = SIMD8<Int32>(
                            m[Int(rowIndex[0])] ? 1 : 0, m[Int(rowIndex[1])] ? 1 : 0,
                            m[Int(rowIndex[2])] ? 1 : 0,
                            m[Int(rowIndex[3])] ? 1 : 0, m[Int(rowIndex[4])] ? 1 : 0,
                            m[Int(rowIndex[5])] ? 1 : 0,
                            m[Int(rowIndex[6])] ? 1 : 0, m[Int(rowIndex[7])] ? 1 : 0)
                        active = active .& (kept .== SIMD8<Int32>(repeating: 1))
                    }
                    let labelled = active .& (laneLabels .>= SIMD8<Int32>(repeating: 0))
                    laneLabels.replace(with: -1, where: .!labelled)
                    let soft = Vec.zero.replacing(with: softWeight, where: active)
                    let hard = Vec.zero.replacing(with: hardWeight, where: labelled)
                    let terms = softRowsInLanes(
                        student: studentBox.value, teacher: teacherBox.value, classes: classes,
                        offsets: offsets,
                        inverseTemperature: invT, teacherScale: teacherScale, labels: laneLabels,
                        wantCE: labels != nil,
                        softWeight: soft, hardWeight: hard, gradient: gradientBox.value,
                        store: count,
                        scratch: scratch.baseAddress!)
                    let badStudent = terms.nonFiniteStudent .& active
                    let badTeacher = terms.nonFiniteTeacher .& active
                    if any(badStudent) || (checkTeacher && any(badTeacher)) {
                        for k in 0..<count where active[k] {
                            let r = first + k
                            if badStudent[k] {
                                totals.error = nonFinite(
                                    "student logits", studentBox.value + r * classes, row: r,
                                    classes: classes)
                                return totals
                            }
                            if checkTeacher && badTeacher[k] {
                                totals.error = nonFinite(
                                    "teacher logits", teacherBox.value + r * classes, row: r,
                                    classes: classes)
                                return totals
                            }
                        }
                    }
                    if let g = gradientBox.value, !all(active .| .!valid) {
                        for k in 0..<count where !active[k] {
                            (g + (first + k) * classes).update(repeating: 0, count: classes)
                        }
                    }
                    totals.soft += Double(
                        horizontalSum(terms.kl.replacing(with: 0, where: .!active)))
                    totals.hard += Double(
                        horizontalSum(terms.crossEntropy.replacing(with: 0, where: .!labelled)))
                }
                return totals
            }
        }
    }
}

/// The value of a distillation loss on a batch, with its named terms (each a mean over rows).
public struct DistillationLossValue: Sendable, Equatable {
    /// The total, `alpha * softLoss + (1 - alpha) * hardLoss` (alpha taken as 1 without labels).
    public var loss: Float
    /// The unweighted divergence: `KL(p || q)` for `.kl`, `CE(s, argmax t)` for `.hard`,
    /// the mean squared logit difference for `.mse`.
    public var divergence: Float
    /// The soft term as it enters the loss: `softScale * T^2 * KL` for `.kl`, `divergence`
    /// otherwise.
    public var softLoss: Float
    /// The cross-entropy against the labels, over labelled rows; nil when no row has a label.
    public var hardLoss: Float?
    /// Rows that count (not masked, not the ignore label).
    public var countedRows: Int
    /// Counted rows that have a label.
    public var labelledRows: Int
}

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The error for the first non-finite element of a row known to have one.
func nonFinite(_ what: String, _ row: UnsafePointer<Float>, row r: Int, classes: Int) -> LossError {
    for c in 0..<classes where !row[c].isFinite {
        return .nonFinite(input: what, row: r, column: c, value: row[c])
    }
    return .nonFinite(input: what, row: r, column: 0, value: .nan)
}

/// `log p` of validated, renormalised probability rows (`-inf` where p = 0).
func logProbabilities(_ p: UnsafeBufferPointer<Float>, rows: Int, classes: Int) throws -> [Float] {
    guard p.count == rows * classes else {
        throw LossError.shapeMismatch(
            "teacher probabilities have \(p.count) values, expected \(rows) x \(classes)")
    }
    var out = [Float](repeating: 0, count: p.count)
    for r in 0..<rows {
        var sum = 0.0
        for c in 0..<classes {
            let v = p[r * classes + c]
            guard v.isFinite else {
                throw LossError.nonFinite(
                    input: "teacher probabilities", row: r, column: c, value: v)
            }
            guard v >= 0 else {
                throw LossError.invalidProbabilities(
                    row: r, reason: "negative value \(v) at column \(c)")
            }
            sum += Double(v)
        }
        guard sum > 0 else {
            throw LossError.invalidProbabilities(row: r, reason: "the row sums to 0")
        }
        for c in 0..<classes {
            let v = Double(p[r * classes + c]) / sum
            out[r * classes + c] = v > 0 ? Float(log(v)) : -.infinity
        }
    }
    return out
}

/// `log((1/M) sum_m softmax(t_m / T))` for each row of an ensemble's logits, in Double: the log of
/// the mean of the members' softened distributions (`-inf` where every member gives 0).
/// - Throws: `LossError` for no members, a member of the wrong size, or a non-finite logit.
public func ensembleLogProbabilities(
    _ members: [UnsafeBufferPointer<Float>], rows: Int, classes: Int,
    temperature: Float
) throws -> [Double] {
    guard !members.isEmpty else {
        throw LossError.shapeMismatch("an ensemble needs at least one teacher")
    }
    var mean = [Double](repeating: 0, count: rows * classes)
    for (m, t) in members.enumerated() {
        guard t.count == rows * classes else {
            throw LossError.shapeMismatch(
                "ensemble member \(m) has \(t.count) values, expected \(rows) x \(classes)")
        }
        for r in 0..<rows {
            let row = t[(r * classes)..<((r + 1) * classes)]
            if let c = row.firstIndex(where: { !$0.isFinite }) {
                throw LossError.nonFinite(
                    input: "ensemble member \(m) logits", row: r, column: c - r * classes,
                    value: t[c])
            }
            for (c, lp) in logSoftmaxRow(row, temperature: Double(temperature)).enumerated() {
                mean[r * classes + c] += exp(lp)
            }
        }
    }
    let scale = 1 / Double(members.count)
    return mean.map { $0 > 0 ? log($0 * scale) : -.infinity }
}
