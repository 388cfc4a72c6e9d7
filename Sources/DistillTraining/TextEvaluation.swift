import DistillCore
import DistillData
import DistillLosses
import DistillNN

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A language model's next-byte figures over a whole text split, in its evaluation windows (see
/// `TextSplit.evaluationWindows`): every byte after the first predicted once.
public struct TextEvaluation: Sendable, Equatable {
    /// Predictions scored.
    public let count: Int
    /// Mean cross-entropy, nats per byte.
    public let crossEntropy: Double
    /// Next-byte top-1 accuracy.
    public let accuracy: Double
    /// With a teacher: how often its top-1 byte is the model's, and the mean
    /// `KL(softmax(teacher) || softmax(model))` at T = 1 in nats, over the same predictions.
    public let teacherAgreement: Double?, teacherKL: Double?

    public var bitsPerByte: Double { crossEntropy / log(2) }
    public var perplexity: Double { exp(crossEntropy) }

    /// Runs `model` (inference mode) over `split` in windows of its context, `batchSize` windows
    /// at a time. The last window, shorter than the context, is padded after its end: a causal
    /// model's predictions do not see the padding.
    /// - Parameters:
    ///   - teacher: a language model with the same context and classes, run on the same windows,
    ///     for `teacherAgreement` and `teacherKL`.
    ///   - teacherLogits: instead of `teacher`, its cached logits over the whole file `split` is
    ///     part of, one row per byte but the last (what `distill logits` writes): the prediction
    ///     of byte `i + 1` of the file is row `i`, whichever window the model saw it in.
    ///   - parts: the cores each batch's windows are split over, for the model and the teacher
    ///     (`BatchSplit`); `TrainingStep.defaultParts(for:)` when nil.
    /// - Throws: `LossError` when the logits are not finite.
    public init(
        model: Model, split: TextSplit, teacher: Model? = nil, teacherLogits: TeacherRows? = nil,
        batchSize: Int = 32, parts: Int? = nil
    ) throws {
        try self.init(
            running: BatchSplit(
                model: model, maximumParts: parts ?? TrainingStep.defaultParts(for: model)),
            over: split, teacher: teacher, teacherLogits: teacherLogits, batchSize: batchSize,
            parts: parts)
    }

    /// The same figures, the model run through `modelSplit` (a training step's, whose replicas
    /// and buffers a validation reuses).
    init(
        running modelSplit: BatchSplit, over split: TextSplit, teacher: Model? = nil,
        teacherLogits: TeacherRows? = nil, batchSize: Int = 32, parts: Int? = nil
    ) throws {
        let model = modelSplit.model
        precondition(teacher == nil || teacherLogits == nil, "one teacher at most")
        precondition(
            (teacherLogits?.count ?? .max) >= split.range.upperBound - 1
                && (teacherLogits?.width ?? model.classes) == model.classes,
            "teacher logits cover the file")
        var cached = Tensor(zeros: [0])
        let context = model.inputShape[0]
        let classes = model.classes
        var total = 0.0
        var correct = 0
        var count = 0
        var agreed = 0
        var divergence = 0.0
        // -1 marks the padding after a short last window: ignored.
        var labels = [Int32](repeating: -1, count: batchSize * context)
        func argmax(_ row: UnsafeMutablePointer<Float>) -> Int {
            indexOfMaximum(row, count: classes)
        }
        let teacherSplit = teacher.map {
            BatchSplit(model: $0, maximumParts: parts ?? TrainingStep.defaultParts(for: $0))
        }
        try split.forEachEvaluationBatch(running: modelSplit, batchSize: batchSize) {
            inputs, logits, group in
            let rows = group.count * context
            for r in 0..<rows { labels[r] = -1 }
            for (row, window) in group.enumerated() {
                for (i, p) in window.enumerated() {
                    labels[row * context + i] = Int32(split[p + 1])
                }
            }
            let scored = group.reduce(0) { $0 + $1.count }
            let mean = try labels.withUnsafeBufferPointer { y in
                try DistillLosses.crossEntropy(
                    logits: UnsafeBufferPointer(logits.buffer),
                    labels: UnsafeBufferPointer(rebasing: y[0..<rows]),
                    rows: rows, classes: classes, ignoreLabel: -1)
            }
            total += Double(mean) * Double(scored)
            for r in 0..<rows where labels[r] >= 0 {
                if argmax(logits.pointer + r * classes) == Int(labels[r]) { correct += 1 }
            }
            var teacherOutput: Tensor?
            if let teacherSplit { teacherOutput = teacherSplit.forward(inputs, mode: .inference) }
            if let teacherLogits {
                cached.resize(to: [rows, classes])
                for (row, window) in group.enumerated() {
                    for (i, p) in window.enumerated() {
                        teacherLogits.copyRow(
                            split.range.lowerBound + p,
                            to: cached.pointer + (row * context + i) * classes)
                    }
                }
                teacherOutput = cached
            }
            if let t = teacherOutput {
                for r in 0..<rows where labels[r] >= 0 {
                    let (s, u) = (logits.pointer + r * classes, t.pointer + r * classes)
                    if argmax(s) == argmax(u) { agreed += 1 }
                    divergence += TextEvaluation.divergence(teacher: u, student: s, classes)
                }
            }
            count += scored
        }
        self.count = count
        crossEntropy = count > 0 ? total / Double(count) : 0
        accuracy = count > 0 ? Double(correct) / Double(count) : 0
        let hasTeacher = teacher != nil || teacherLogits != nil
        teacherAgreement = hasTeacher ? Double(agreed) / Double(max(count, 1)) : nil
        teacherKL = hasTeacher ? divergence / Double(max(count, 1)) : nil
    }
}

extension TextEvaluation {
    /// `KL(softmax(u) || softmax(s))` of one row, in Double, without building the distributions:
    /// `sum_c p_c (u_c - s_c) - lse(u) + lse(s)` with `p = exp(u - lse(u))`.
    static func divergence(
        teacher u: UnsafeMutablePointer<Float>, student s: UnsafeMutablePointer<Float>,
        _ classes: Int
    ) -> Double {
        var (mu, ms) = (-Float.infinity, -Float.infinity)
        for c in 0..<classes { (mu, ms) = (max(mu, u[c]), max(ms, s[c])) }
        var (zu, zs, weighted) = (0.0, 0.0, 0.0)
        for c in 0..<classes {
            let e = exp(Double(u[c] - mu))
            zu += e
            zs += exp(Double(s[c] - ms))
            weighted += e * Double(u[c] - s[c])
        }
        return weighted / zu - (Double(mu) + log(zu)) + (Double(ms) + log(zs))
    }
}

extension TextSplit {
    /// Runs `model` (inference mode) over the split's evaluation windows, `batchSize` windows at a
    /// time, and calls `body` with each batch's inputs `[n, C]` (a short last window padded after
    /// its end with byte 0: a causal model's predictions do not see it), the logits
    /// `[n C, classes]` and the windows. The tensors are reused from batch to batch. Each batch's
    /// windows are split over the cores by `split` (`BatchSplit`), as a training step's are.
    func forEachEvaluationBatch(
        running split: BatchSplit, batchSize: Int,
        _ body: (_ inputs: Tensor, _ logits: Tensor, _ windows: ArraySlice<Range<Int>>) throws ->
            Void
    ) throws {
        let context = split.model.inputShape[0]
        let windows = evaluationWindows(context: context)
        var inputs = Tensor(zeros: [0])
        var start = 0
        while start < windows.count {
            let group = windows[start..<min(start + batchSize, windows.count)]
            inputs.resize(to: [group.count, context])
            inputs.fill(0)
            for (row, window) in group.enumerated() {
                for (i, p) in window.enumerated() { inputs[row * context + i] = Float(self[p]) }
            }
            try body(inputs, split.forward(inputs, mode: .inference), group)
            start += group.count
        }
    }
}
