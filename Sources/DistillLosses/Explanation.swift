/// Every quantity of the distillation loss for one example: what `distill explain` shows.
///
/// Built from one row of student logits, a teacher row (logits, or probabilities at T = 1 that
/// the power transform softens), T, alpha and an optional label. Without a label the hard term is
/// omitted and alpha is taken as 1 (`alphaForcedToOne`).
public struct Explanation: Sendable, Equatable {
    public let temperature: Float
    /// The alpha used (1 when no label was given).
    public let alpha: Float
    /// True when alpha was asked for below 1 but no label was given.
    public let alphaForcedToOne: Bool
    public let label: Int?
    /// Teacher probabilities at T = 1 and at T.
    public let teacherProbabilities: [Float], teacherSoftProbabilities: [Float]
    /// Student probabilities at T = 1 and at T.
    public let studentProbabilities: [Float], studentSoftProbabilities: [Float]
    /// `KL(p_T || q_T)`.
    public let kl: Float
    /// `T^2 * KL`.
    public let softLoss: Float
    /// `CE(s, y)` at T = 1, or nil without a label.
    public let hardLoss: Float?
    /// `alpha * softLoss + (1 - alpha) * hardLoss`.
    public let loss: Float
    /// `dL/ds`.
    public let gradient: [Float]
    /// `||d(T^2 KL)/ds|| = ||T (q - p)||` and `||d KL/ds|| = ||(q - p) / T||`.
    public let softGradientNorm: Float, softGradientNormWithoutTSquared: Float

    /// - Throws: `LossError` for mismatched lengths, non-finite values, T <= 0, alpha outside
    ///   [0, 1], a label outside [0, C), or invalid probabilities.
    public init(
        studentLogits s: [Float], teacherLogits: [Float]? = nil,
        teacherProbabilities: [Float]? = nil,
        temperature: Float, alpha requestedAlpha: Float, label: Int?
    ) throws {
        guard (teacherLogits == nil) != (teacherProbabilities == nil) else {
            throw LossError.shapeMismatch(
                "give teacher logits or teacher probabilities, not both or neither")
        }
        let teacher = teacherLogits ?? teacherProbabilities!
        guard teacher.count == s.count, !s.isEmpty else {
            throw LossError.shapeMismatch("teacher has \(teacher.count) values, student \(s.count)")
        }
        guard requestedAlpha >= 0, requestedAlpha <= 1 else {
            throw LossError.invalidAlpha(requestedAlpha)
        }
        let alpha = label == nil ? 1 : requestedAlpha
        let loss = try DistillationLoss(temperature: temperature, alpha: alpha)
        let c = s.count
        var gradient = [Float](repeating: 0, count: c)
        let labels: [Int32]? = label.map { [Int32(clamping: $0)] }
        let value = try s.withUnsafeBufferPointer { sb in
            try teacher.withUnsafeBufferPointer { tb in
                try gradient.withUnsafeMutableBufferPointer { g in
                    try withOptionalBuffer(labels) { y in
                        try loss.evaluate(
                            studentLogits: sb,
                            teacher: teacherLogits != nil ? .logits(tb) : .probabilities(tb),
                            labels: y, rows: 1, classes: c, gradient: g)
                    }
                }
            }
        }
        if let teacherLogits {
            self.teacherProbabilities = try softmax(logits: teacherLogits, temperature: 1)
            self.teacherSoftProbabilities = try softmax(
                logits: teacherLogits, temperature: temperature)
        } else {
            let p = teacherProbabilities!
            let total = p.reduce(0.0) { $0 + Double($1) }
            self.teacherProbabilities = p.map { Float(Double($0) / total) }
            // The power transform p^(1/T) / sum p^(1/T), via the log domain (log 0 = -inf gives 0).
            let logs = self.teacherProbabilities.map {
                $0 > 0 ? Float(log(Double($0))) : -Float.infinity
            }
            self.teacherSoftProbabilities = logSoftmaxRow(logs, temperature: Double(temperature))
                .map { Float(exp($0)) }
        }
        studentProbabilities = try softmax(logits: s, temperature: 1)
        studentSoftProbabilities = try softmax(logits: s, temperature: temperature)
        var squared = 0.0
        for i in 0..<c {
            let d = Double(studentSoftProbabilities[i]) - Double(teacherSoftProbabilities[i])
            squared += d * d
        }
        let norm = squared.squareRoot()
        softGradientNorm = Float(Double(temperature) * norm)
        softGradientNormWithoutTSquared = Float(norm / Double(temperature))
        self.temperature = temperature
        self.alpha = alpha
        self.alphaForcedToOne = label == nil && requestedAlpha < 1
        self.label = label
        self.kl = value.divergence
        self.softLoss = value.softLoss
        self.hardLoss = value.hardLoss
        self.loss = value.loss
        self.gradient = gradient
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
