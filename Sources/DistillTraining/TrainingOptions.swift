import DistillCore
import DistillNN

/// How to train: optimiser, schedule, length, batches, regularisation and seed.
public struct TrainingOptions: Sendable, Equatable {
    public enum OptimizerKind: String, Sendable, CaseIterable { case sgd, adam, adamw }
    public enum ScheduleKind: String, Sendable, CaseIterable { case constant, step, cosine }

    /// Passes over the training examples (ignored when `steps` is set).
    public var epochs = 10
    /// Total optimiser steps; when set, the run lasts this many steps whatever the set's size, and
    /// validation happens `validations` times instead of once per epoch.
    public var steps: Int?
    /// Validations in a run of `steps` steps.
    public var validations = 20
    public var batchSize = 128
    public var optimizer = OptimizerKind.sgd
    public var learningRate: Float = 0.05
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 0
    public var schedule = ScheduleKind.cosine
    /// Linear warm-up steps.
    public var warmupSteps = 0
    /// For the step schedule: multiply the rate by `stepFactor` every `stepEvery` epochs.
    public var stepEvery = 5
    public var stepFactor: Float = 0.1
    /// The max-norm constraint on each unit's incoming weights.
    public var maxNorm: Float?
    public var seed: UInt64 = 0
    /// Random translation of images by up to this many pixels.
    public var jitter = 0
    /// Random horizontal flips of images.
    public var flip = false
    /// Cutout of images: a square of this side set to 0 at a random centre (0: none).
    public var cutout = 0
    /// Mixup's Beta parameter (0: none; see `Batcher.mixup`).
    public var mixup: Float = 0
    /// Whether the inputs are augmented (they differ from batch to batch).
    public var augments: Bool { jitter > 0 || flip || cutout > 0 || mixup > 0 }
    /// Stop after this many validations without improvement (the best weights are kept).
    public var earlyStoppingPatience: Int?
    /// Distillation: the soft term's weight ramps linearly over this many first steps, step `k`
    /// (from 0) weighing `(k + 1) / softWarmupSteps` of it (0: none; `softWarmupFactor(at:)`).
    public var softWarmupSteps = 0

    /// The factor on the soft term at step `step` (from 0): `min((step + 1) / softWarmupSteps, 1)`,
    /// or 1 without a warm-up.
    public func softWarmupFactor(at step: Int) -> Float {
        softWarmupSteps > 0 ? min(Float(step + 1) / Float(softWarmupSteps), 1) : 1
    }

    public init() {}

    /// The most epochs a run may ask for (their steps are counted in an `Int`).
    public static let maximumEpochs = 1_000_000

    /// The optimiser these options describe.
    public func makeOptimizer() -> any Optimizer {
        switch optimizer {
        case .sgd:
            return SGD(
                learningRate: learningRate, momentum: momentum, nesterov: nesterov,
                weightDecay: weightDecay, maxNorm: maxNorm)
        case .adam:
            return Adam(learningRate: learningRate, weightDecay: weightDecay, maxNorm: maxNorm)
        case .adamw:
            return Adam.adamW(
                learningRate: learningRate, weightDecay: weightDecay, maxNorm: maxNorm)
        }
    }

    /// The learning-rate schedule over `totalSteps` steps of `stepsPerEpoch` each.
    public func makeSchedule(totalSteps: Int, stepsPerEpoch: Int) -> LearningRateSchedule {
        switch schedule {
        case .constant:
            return LearningRateSchedule(
                base: learningRate, decay: .constant, warmupSteps: warmupSteps)
        case .step:
            return LearningRateSchedule(
                base: learningRate,
                decay: .step(every: stepEvery * stepsPerEpoch, factor: stepFactor),
                warmupSteps: warmupSteps)
        case .cosine:
            return LearningRateSchedule(
                base: learningRate, decay: .cosine(totalSteps: totalSteps, minimum: 0),
                warmupSteps: warmupSteps)
        }
    }

    /// Checks the numbers; the message names the option.
    public func validate() throws {
        func fail(_ m: String) -> TrainingError { TrainingError.invalidOption(m) }
        if steps == nil && !(1...Self.maximumEpochs).contains(epochs) {
            throw fail("--epochs must be from 1 to \(Self.maximumEpochs), got \(epochs)")
        }
        if let steps, steps < 1 { throw fail("--steps must be at least 1, got \(steps)") }
        if batchSize < 1 { throw fail("--batch-size must be at least 1, got \(batchSize)") }
        if !(learningRate > 0) || !learningRate.isFinite {
            throw fail("--lr must be a number > 0, got \(learningRate)")
        }
        if !(momentum >= 0 && momentum < 1) {
            throw fail("--momentum must be in [0, 1), got \(momentum)")
        }
        if !(weightDecay >= 0) || !weightDecay.isFinite {
            throw fail("--weight-decay must be >= 0, got \(weightDecay)")
        }
        if let maxNorm, !(maxNorm > 0) { throw fail("--max-norm must be > 0, got \(maxNorm)") }
        if jitter < 0 { throw fail("--jitter must be >= 0, got \(jitter)") }
        if cutout < 0 { throw fail("--cutout must be >= 0, got \(cutout)") }
        if !(mixup >= 0) || !mixup.isFinite { throw fail("--mixup must be >= 0, got \(mixup)") }
        if mixup > 0 && batchSize < 2 {
            throw fail("--mixup mixes the rows of a batch: it needs --batch-size 2 or more")
        }
        if let p = earlyStoppingPatience, p < 1 {
            throw fail("--early-stopping must be at least 1, got \(p)")
        }
        if warmupSteps < 0 { throw fail("--warmup must be >= 0, got \(warmupSteps)") }
        if softWarmupSteps < 0 {
            throw fail("--soft-warmup must be >= 0, got \(softWarmupSteps)")
        }
    }
}

extension TrainingOptions {
    /// For data that is not examples (text, sentences): augmentation has nothing to act on.
    /// - Throws: `TrainingError.invalidOption` when any augmentation is asked for.
    func refuseAugmentation() throws {
        guard !augments else {
            throw TrainingError.invalidOption(
                "--jitter, --flip and --cutout need images, --mixup examples (images or features)")
        }
    }
}

/// Why training stopped or could not start.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidOption(String)
    /// The loss or the logits became NaN or infinite.
    case diverged(epoch: Int, batch: Int, detail: String)
    case incompatible(String)

    public var description: String {
        switch self {
        case .invalidOption(let m): return m
        case .diverged(let epoch, let batch, let detail):
            return
                "training diverged at epoch \(epoch), batch \(batch) (\(detail)); the best weights so far were kept. Try a lower --lr."
        case .incompatible(let m): return m
        }
    }
}
