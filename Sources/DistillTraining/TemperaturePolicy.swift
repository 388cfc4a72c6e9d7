import DistillData
import DistillLosses

/// How the temperature is set over a run.
public enum TemperatureMethod: Sendable, Equatable {
    /// The loss's own temperature, every step.
    case fixed
    /// Annealed from the loss's temperature by a schedule over the run's steps.
    case scheduled(TemperatureSchedule)
    /// Learned adversarially (CTKD) with this learning rate for its parameter.
    case learned(learningRate: Double)

    /// Checks what a distillation run may combine; the one place these rules live (the commands
    /// call it before any work, the trainer again).
    ///
    /// - A learned temperature takes the kl objective and a single teacher, without logit
    ///   standardisation.
    /// - Logit standardisation takes a single teacher.
    /// - Only the kl objective takes an ensemble.
    /// - Top-k teacher logits take the kl or hard objective, without standardisation (the logits
    ///   outside the top k are unknown); with a rest bucket, not a learned temperature.
    /// - A warm-up of the soft term (`softWarmup` steps) takes an objective whose soft term has a
    ///   weight (kl, dkd or dist), and a temperature that is not learned (CTKD's update weighs the
    ///   soft term at its full weight).
    /// - Throws: `TrainingError.invalidOption` naming the flags that do not go together.
    public func check(loss: DistillationLoss, teachers: Int, topK: TopKMass?, softWarmup: Int = 0)
        throws
    {
        func fail(_ message: String) -> TrainingError { .invalidOption(message) }
        if softWarmup > 0 && !loss.softTermIsWeighted {
            throw fail("--soft-warmup takes the kl, dkd or dist objective")
        }
        if case .learned = self, softWarmup > 0 {
            throw fail("--soft-warmup does not go with --adaptive-temperature ctkd")
        }
        if case .learned = self, loss.objective != .kl || loss.logitStandardization || teachers > 1
        {
            throw fail(
                "--adaptive-temperature ctkd takes the kl objective and a single teacher, without a schedule or standardisation"
            )
        }
        if loss.logitStandardization && teachers > 1 {
            throw fail("--logit-standardization takes the kl objective and a single teacher")
        }
        if loss.objective != .kl && teachers > 1 {
            throw fail("--objective \(loss.objective.rawValue) takes a single teacher")
        }
        if topK != nil
            && (loss.objective == .mse || loss.objective == .dkd || loss.objective == .dist
                || loss.logitStandardization)
        {
            throw fail(
                "--teacher-top-k takes the kl or hard objective, without --logit-standardization (the missing logits are unknown)"
            )
        }
        if case .learned = self, topK == .rest {
            throw fail(
                "--adaptive-temperature ctkd takes dense teacher logits or --top-k-mass renormalise"
            )
        }
    }

    /// The policy that carries this method through a run of `loss`.
    func makePolicy(loss: DistillationLoss) -> any TemperaturePolicy {
        switch self {
        case .fixed: return FixedTemperature(loss: loss)
        case .scheduled(let schedule): return ScheduledTemperature(loss: loss, schedule: schedule)
        case .learned(let learningRate):
            return LearnedTemperature(loss: loss, learningRate: learningRate)
        }
    }
}

/// Supplies each step's distillation loss and sees the logits the step trained on.
public protocol TemperaturePolicy: AnyObject {
    /// The loss for step `step` (from 0) of `totalSteps`.
    func loss(at step: Int, of totalSteps: Int) throws -> DistillationLoss
    /// After step `step`: the student's logits (`rows x classes`) before the update, the teacher
    /// output the step used, and whether the batch had labelled rows.
    func observe(
        studentLogits: UnsafeBufferPointer<Float>, teacher: TeacherOutput, rows: Int, classes: Int,
        hadLabels: Bool, step: Int, of totalSteps: Int) throws
    /// What a training checkpoint must keep to continue the policy exactly (nil: nothing).
    var checkpointValue: Double? { get set }
    /// The temperature the run ends with, when the policy learns it.
    var learnedTemperature: Float? { get }
}

extension TemperaturePolicy {
    public func observe(
        studentLogits: UnsafeBufferPointer<Float>, teacher: TeacherOutput, rows: Int, classes: Int,
        hadLabels: Bool, step: Int, of totalSteps: Int
    ) throws {}
    public var checkpointValue: Double? {
        get { nil }
        set {}
    }
    public var learnedTemperature: Float? { nil }
}

/// The same loss every step.
final class FixedTemperature: TemperaturePolicy {
    let base: DistillationLoss
    init(loss: DistillationLoss) { base = loss }
    func loss(at step: Int, of totalSteps: Int) throws -> DistillationLoss { base }
}

/// The loss at the schedule's temperature for the step.
final class ScheduledTemperature: TemperaturePolicy {
    let base: DistillationLoss
    let schedule: TemperatureSchedule
    init(loss: DistillationLoss, schedule: TemperatureSchedule) {
        (base, self.schedule) = (loss, schedule)
    }

    func loss(at step: Int, of totalSteps: Int) throws -> DistillationLoss {
        try base.with(temperature: schedule.temperature(at: step, of: totalSteps))
    }
}

/// CTKD: the temperature `AdaptiveTemperature` holds, updated against the student after every
/// step from the soft term's gradient with respect to T on that step's logits.
final class LearnedTemperature: TemperaturePolicy {
    let base: DistillationLoss
    /// The temperature's only home during a run (a checkpoint saves its `theta`).
    private(set) var current: AdaptiveTemperature

    init(loss: DistillationLoss, learningRate: Double) {
        base = loss
        current = AdaptiveTemperature(learningRate: learningRate)
    }

    func loss(at step: Int, of totalSteps: Int) throws -> DistillationLoss {
        try base.with(temperature: current.temperature)
    }

    func observe(
        studentLogits: UnsafeBufferPointer<Float>, teacher: TeacherOutput, rows: Int, classes: Int,
        hadLabels: Bool, step: Int, of totalSteps: Int
    ) throws {
        guard case .logits(let t) = teacher else { return }
        let gradient = try softTermTemperatureGradient(
            studentLogits: studentLogits, teacherLogits: t, rows: rows,
            classes: classes, temperature: current.temperature)
        current.update(
            softGradient: gradient, alpha: hadLabels ? Double(base.alpha) : 1, step: step,
            of: totalSteps)
    }

    var checkpointValue: Double? {
        get { current.theta }
        set { if let newValue { current.theta = newValue } }
    }

    var learnedTemperature: Float? { current.temperature }
}
