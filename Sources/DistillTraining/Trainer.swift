import DistillCore
import DistillData
import DistillLosses
import DistillNN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One validation point of a run: an epoch, or a slice of the steps when the run counts steps.
public struct EpochRecord: Sendable, Equatable {
    public let epoch: Int
    public let step: Int
    /// Mean total loss over the round, and its terms (soft is nil without a teacher).
    public let loss: Double, softLoss: Double?, hardLoss: Double?
    /// Accuracy on the round's labelled training examples.
    public let trainingAccuracy: Double
    public let validationAccuracy: Double?
    public let learningRate: Float
    public let seconds: Double
}

/// What a run did.
public struct TrainingSummary: Sendable {
    public let records: [EpochRecord]
    /// The round whose weights the model holds (best validation accuracy; the last without one).
    public let bestEpoch: Int
    public let bestValidationAccuracy: Double?
    public let stoppedEarly: Bool
    public let interrupted: Bool
    public let seconds: Double
    /// The temperature a CTKD run ended with.
    public var learnedTemperature: Float?
}

/// Set by SIGINT (Ctrl-C); trainers stop after the current batch and keep the best weights.
nonisolated(unsafe) public var stopRequested = false

/// Makes Ctrl-C request a stop instead of killing the process (a second Ctrl-C kills it).
public func installInterruptHandler() {
    signal(SIGINT) { _ in
        if stopRequested { _exit(130) }
        stopRequested = true
    }
}

/// Trains a model on labels, or distils it from a teacher, validating as it goes.
///
/// Without a teacher the loss is cross-entropy over labelled examples. With one, it is the
/// distillation loss: soft targets on every example, the hard term on those with a label. After
/// each round (an epoch, or a slice of the steps) the model is validated; the weights with the
/// best validation accuracy are kept and restored at the end (early stopping ends the run after
/// `patience` rounds without improvement).
public final class Trainer {
    public let model: Model
    public let options: TrainingOptions
    public let training: Examples
    public let validation: Examples?
    public let teacher: TeacherSignal?
    public let loss: DistillationLoss?
    /// When set, the loss's temperature follows this schedule over the run's steps.
    public let temperatureSchedule: TemperatureSchedule?
    /// When set, the temperature is learned adversarially (CTKD); its final value is here after `run`.
    public private(set) var adaptiveTemperature: AdaptiveTemperature?

    public init(model: Model, options: TrainingOptions, training: Examples, validation: Examples?,
                teacher: TeacherSignal? = nil, loss: DistillationLoss? = nil,
                temperatureSchedule: TemperatureSchedule? = nil, adaptiveTemperature: AdaptiveTemperature? = nil) throws {
        if adaptiveTemperature != nil {
            guard temperatureSchedule == nil, let loss, loss.objective == .kl, !loss.logitStandardization else {
                throw TrainingError.invalidOption("an adaptive temperature takes the kl objective, without a schedule or logit standardisation")
            }
            if case let .models(models)? = teacher, models.count > 1 {
                throw TrainingError.invalidOption("an adaptive temperature takes a single teacher")
            }
        }
        try options.validate()
        guard training.count > 0 else { throw TrainingError.invalidOption("there are no training examples") }
        guard Array(training.exampleShape) == model.inputShape || training.featureCount == model.inputShape.reduce(1, *) else {
            throw TrainingError.incompatibleTeacher("the model takes inputs \(model.inputShape), the data has \(training.exampleShape)")
        }
        guard training.classes <= model.classes else {
            throw TrainingError.incompatibleTeacher("the data has \(training.classes) classes, the model \(model.classes)")
        }
        if teacher != nil && loss == nil { throw TrainingError.invalidOption("a teacher needs a distillation loss") }
        if teacher == nil && training.labelledCount == 0 {
            throw TrainingError.invalidOption("no training example has a label; distil from a teacher instead")
        }
        if case let .rows(rows)? = teacher, rows.width != model.classes || rows.count < training.count {
            throw TrainingError.incompatibleTeacher("teacher logits are [\(rows.count), \(rows.width)]; \(training.count) examples of \(model.classes) classes need [\(training.count), \(model.classes)] or more rows")
        }
        if case let .models(models)? = teacher {
            for t in models where t.classes != model.classes || t.inputShape.reduce(1, *) != model.inputShape.reduce(1, *) {
                throw TrainingError.incompatibleTeacher("a teacher has \(t.classes) classes and input \(t.inputShape); the student has \(model.classes) and \(model.inputShape)")
            }
        }
        self.model = model
        self.options = options
        self.training = training
        self.validation = validation
        self.teacher = teacher
        self.loss = loss
        self.temperatureSchedule = temperatureSchedule
        self.adaptiveTemperature = adaptiveTemperature
    }

    /// Runs training.
    /// - Parameters:
    ///   - progress: receives every batch and every validation.
    ///   - checkpoint: where and how often (in steps, and after every validation) to save the
    ///     training state, and the run's settings to record in it; nil for never.
    ///   - resume: a state saved by an earlier run with the same settings, to continue from.
    /// - Throws: `TrainingError.diverged` when the loss or logits stop being finite (the best
    ///   weights so far are restored first).
    public func run(progress: ProgressReporter? = nil, checkpoint: (path: String, every: Int, settings: String)? = nil,
                    resume: TrainingState? = nil) throws -> TrainingSummary {
        let options = self.options
        var teacherRows: TeacherRows?
        if case let .rows(rows)? = teacher { teacherRows = rows }
        let batcher = try Batcher(examples: training, batchSize: options.batchSize, shuffle: true, seed: options.seed,
                                  jitter: options.jitter, teacherRows: teacherRows)
        let stepsPerEpoch = batcher.batchesPerEpoch
        let totalSteps = options.steps ?? options.epochs * stepsPerEpoch
        let rounds = options.steps.map { max(1, min(options.validations, $0)) } ?? options.epochs
        let schedule = options.makeSchedule(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch)
        let step = TrainingStep(model: model, optimizer: options.makeOptimizer())
        let parameters = model.parameters
        let state = resume ?? TrainingState(best: parameters.map { $0.value.values })
        if let resume { try resume.apply(to: model, optimizer: step.optimizer) }
        if let checkpoint { state.settings = checkpoint.settings }
        if resume == nil { state.adaptiveTheta = adaptiveTemperature?.theta }
        defer { if let theta = state.adaptiveTheta { adaptiveTemperature?.theta = theta } }
        let start = monotonicSeconds() - state.elapsed
        batcher.start(epoch: state.epoch)
        for _ in 0..<state.batchInEpoch { _ = batcher.next() }   // the same batches as before the stop
        var teacherOutputs: [Tensor] = []
        var stopped = false
        run: while state.round <= rounds {
            let round = state.round
            let roundEnd = totalSteps * round / rounds
            let roundStart = monotonicSeconds()
            while state.globalStep < roundEnd {
                if stopRequested {
                    stopped = true
                    if let checkpoint {
                        state.elapsed = monotonicSeconds() - start
                        try state.save(to: checkpoint.path, model: model, optimizer: step.optimizer)
                    }
                    break run
                }
                guard let batch = batcher.next() else {
                    state.epoch += 1
                    state.batchInEpoch = 0
                    batcher.start(epoch: state.epoch)
                    continue
                }
                step.optimizer.learningRate = schedule.rate(at: state.globalStep)
                let n = batch.count
                var value: DistillationLossValue?
                var plainLoss: Float = 0
                let logits: Tensor
                do {
                    if var loss {
                        if let schedule = temperatureSchedule {
                            loss = try DistillationLoss(
                                temperature: schedule.temperature(at: state.globalStep, of: totalSteps), alpha: loss.alpha,
                                objective: loss.objective, ignoreLabel: loss.ignoreLabel,
                                logitStandardization: loss.logitStandardization)
                        } else if let theta = state.adaptiveTheta, let adaptive = adaptiveTemperature {
                            let current = AdaptiveTemperature(theta: theta, learningRate: adaptive.learningRate)
                            loss = try DistillationLoss(temperature: current.temperature, alpha: loss.alpha,
                                                        objective: loss.objective, ignoreLabel: loss.ignoreLabel)
                        }
                        let output: TeacherOutput
                        if case let .models(models)? = teacher {
                            if teacherOutputs.count != models.count { teacherOutputs = models.map { _ in Tensor(zeros: [0]) } }
                            for (m, t) in models.enumerated() {
                                let out = t.forward(batch.inputs, mode: .inference)
                                teacherOutputs[m].resize(to: out.shape)
                                teacherOutputs[m].pointer.update(from: out.pointer, count: out.count)
                            }
                            output = models.count > 1 ? .ensembleLogits(teacherOutputs.map { UnsafeBufferPointer($0.buffer) })
                                                      : .logits(UnsafeBufferPointer(teacherOutputs[0].buffer))
                        } else {
                            output = .logits(UnsafeBufferPointer(batch.teacher!.buffer))
                        }
                        let labels = batch.labels ?? [Int32](repeating: Examples.noLabel, count: n)
                        let result = try labels.withUnsafeBufferPointer { y in
                            try step.run(batch: batch.inputs, teacher: output, labels: y, loss: loss)
                        }
                        value = result.value
                        logits = result.logits
                        if let theta = state.adaptiveTheta, let adaptive = adaptiveTemperature, case let .logits(t) = output {
                            // The temperature's reversed step, on the logits the student's step saw.
                            var current = AdaptiveTemperature(theta: theta, learningRate: adaptive.learningRate)
                            let gradient = try softTermTemperatureGradient(
                                studentLogits: UnsafeBufferPointer(logits.buffer), teacherLogits: t, rows: n,
                                classes: model.classes, temperature: current.temperature)
                            let effectiveAlpha = (result.value.labelledRows > 0) ? Double(loss.alpha) : 1
                            current.update(softGradient: gradient, alpha: effectiveAlpha, step: state.globalStep, of: totalSteps)
                            state.adaptiveTheta = current.theta
                        }
                    } else {
                        let result = try batch.labels!.withUnsafeBufferPointer { y in
                            try step.run(batch: batch.inputs, labels: y)
                        }
                        plainLoss = result.loss
                        logits = result.logits
                    }
                } catch let error as LossError {
                    state.restoreBest(into: parameters)
                    throw TrainingError.diverged(epoch: state.epoch + 1, batch: state.batchInEpoch + 1, detail: "\(error)")
                }
                let total = Double(value?.loss ?? plainLoss)
                guard total.isFinite else {
                    state.restoreBest(into: parameters)
                    throw TrainingError.diverged(epoch: state.epoch + 1, batch: state.batchInEpoch + 1, detail: "the loss is \(total)")
                }
                state.sums.add(loss: total, value: value, logits: logits, labels: batch.labels, classes: model.classes)
                state.globalStep += 1
                state.batchInEpoch += 1
                let roundBegin = totalSteps * (round - 1) / rounds
                progress?.batch(round: round, rounds: rounds, step: state.globalStep - roundBegin, steps: roundEnd - roundBegin,
                                examplesPerSecond: Double(n * (state.globalStep - roundBegin)) / max(monotonicSeconds() - roundStart, 1e-9),
                                loss: state.sums.loss / Double(state.sums.batches), accuracy: state.sums.accuracy,
                                elapsed: monotonicSeconds() - start, totalSteps: totalSteps, stepsDone: state.globalStep)
                if let checkpoint, state.globalStep % checkpoint.every == 0, state.globalStep < roundEnd {
                    state.elapsed = monotonicSeconds() - start
                    try state.save(to: checkpoint.path, model: model, optimizer: step.optimizer)
                }
            }
            guard state.sums.batches > 0 else { break }
            var validationAccuracy: Double?
            if let validation, validation.count > 0, let labels = validation.labels {
                let logits = try inferLogits(model: model, examples: validation)
                guard logits.allSatisfy(\.isFinite) else {   // the round's last update overflowed
                    state.restoreBest(into: parameters)
                    throw TrainingError.diverged(epoch: state.epoch + 1, batch: state.batchInEpoch,
                                                 detail: "the validation logits are not finite after this batch's update")
                }
                validationAccuracy = EvaluationReport(logits: logits, labels: labels, classes: model.classes).accuracy
            }
            let sums = state.sums
            let record = EpochRecord(
                epoch: round, step: state.globalStep, loss: sums.loss / Double(sums.batches),
                softLoss: sums.hasSoft ? sums.soft / Double(sums.batches) : nil,
                hardLoss: sums.hasHard ? sums.hard / Double(sums.batches) : nil,
                trainingAccuracy: sums.accuracy ?? 0, validationAccuracy: validationAccuracy,
                learningRate: schedule.rate(at: max(state.globalStep - 1, 0)), seconds: monotonicSeconds() - start)
            state.records.append(record)
            let improved: Bool
            if let v = validationAccuracy {
                improved = state.bestAccuracy.map { v > $0 } ?? true
                if improved { state.bestAccuracy = v }
            } else {
                improved = true
            }
            if improved {
                state.bestEpoch = round
                state.best = parameters.map { $0.value.values }
                state.sinceImprovement = 0
            } else {
                state.sinceImprovement += 1
            }
            state.sums = RoundSums()
            state.round += 1
            progress?.round(record, best: improved)
            if let checkpoint, state.round <= rounds {
                state.elapsed = monotonicSeconds() - start
                try state.save(to: checkpoint.path, model: model, optimizer: step.optimizer)
            }
            if let patience = options.earlyStoppingPatience, state.sinceImprovement >= patience {
                state.stoppedEarly = true
                break
            }
        }
        state.restoreBest(into: parameters)
        return TrainingSummary(records: state.records, bestEpoch: state.bestEpoch, bestValidationAccuracy: state.bestAccuracy,
                               stoppedEarly: state.stoppedEarly, interrupted: stopped, seconds: monotonicSeconds() - start)
    }
}

/// Running sums of a round (for its record; they do not affect the weights).
public struct RoundSums: Sendable {
    public var loss = 0.0, soft = 0.0, hard = 0.0
    public var batches = 0, correct = 0, labelled = 0
    public var hasSoft = false, hasHard = false

    public init() {}

    public var accuracy: Double? { labelled > 0 ? Double(correct) / Double(labelled) : nil }

    mutating func add(loss total: Double, value: DistillationLossValue?, logits: Tensor, labels: [Int32]?, classes: Int) {
        loss += total
        if let v = value {
            soft += Double(v.softLoss); hasSoft = true
            if let h = v.hardLoss { hard += Double(h); hasHard = true }
        } else {
            hard += total; hasHard = true
        }
        if let labels {
            for r in 0..<labels.count where labels[r] >= 0 {
                labelled += 1
                var best = 0
                for c in 1..<classes where logits[r * classes + c] > logits[r * classes + best] { best = c }
                if best == Int(labels[r]) { correct += 1 }
            }
        }
        batches += 1
    }
}

/// Receives a trainer's progress.
public protocol ProgressReporter: AnyObject {
    func batch(round: Int, rounds: Int, step: Int, steps: Int, examplesPerSecond: Double, loss: Double,
               accuracy: Double?, elapsed: Double, totalSteps: Int, stepsDone: Int)
    func round(_ record: EpochRecord, best: Bool)
}

