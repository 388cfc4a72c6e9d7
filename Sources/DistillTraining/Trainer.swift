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

    public init(model: Model, options: TrainingOptions, training: Examples, validation: Examples?,
                teacher: TeacherSignal? = nil, loss: DistillationLoss? = nil) throws {
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
        if case let .cached(logits)? = teacher, logits.count != training.count * model.classes {
            throw TrainingError.incompatibleTeacher("teacher logits hold \(logits.count) values; \(training.count) examples of \(model.classes) classes need \(training.count * model.classes)")
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
    }

    /// Runs training.
    /// - Parameters:
    ///   - progress: receives every batch and every validation.
    ///   - log: called with each record (the CLI writes the metrics log from it).
    /// - Throws: `TrainingError.diverged` when the loss or logits stop being finite (the best
    ///   weights so far are restored first).
    public func run(progress: ProgressReporter? = nil) throws -> TrainingSummary {
        let options = self.options
        let cached: [Float]?
        if case let .cached(c)? = teacher { cached = c } else { cached = nil }
        let batcher = try Batcher(examples: training, batchSize: options.batchSize, shuffle: true, seed: options.seed,
                                  jitter: options.jitter, teacherOutputs: cached, teacherWidth: cached == nil ? 0 : model.classes)
        let stepsPerEpoch = batcher.batchesPerEpoch
        let totalSteps = options.steps ?? options.epochs * stepsPerEpoch
        let rounds = options.steps.map { max(1, min(options.validations, $0)) } ?? options.epochs
        let schedule = options.makeSchedule(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch)
        let step = TrainingStep(model: model, optimizer: options.makeOptimizer())
        let parameters = model.parameters
        var best: [[Float]] = parameters.map { $0.value.values }
        var bestAccuracy: Double?
        var bestEpoch = 0
        var records: [EpochRecord] = []
        var sinceImprovement = 0
        var stoppedEarly = false
        let start = now()
        var globalStep = 0, epoch = 0
        batcher.start(epoch: 0)
        var batchInEpoch = 0
        let teacherLogits = Tensor(zeros: [0])
        var teacherOutputs: [Tensor] = []
        run: for round in 1...rounds {
            let roundEnd = totalSteps * round / rounds
            let roundStart = now()
            var lossSum = 0.0, softSum = 0.0, hardSum = 0.0, batches = 0, seen = 0, correct = 0, labelled = 0
            var hasSoft = false, hasHard = false
            while globalStep < roundEnd {
                if stopRequested { break run }
                guard let batch = batcher.next() else {
                    epoch += 1
                    batcher.start(epoch: epoch)
                    batchInEpoch = 0
                    continue
                }
                let rate = schedule.rate(at: globalStep)
                step.optimizer.learningRate = rate
                let n = batch.count
                var value: DistillationLossValue?
                var plainLoss: Float = 0
                let logits: Tensor
                do {
                    if let loss {
                        let teacherBatch: Tensor
                        if let t = batch.teacher {
                            teacherBatch = t
                        } else if case let .models(models)? = teacher {
                            if teacherOutputs.count != models.count { teacherOutputs = models.map { _ in Tensor(zeros: [0]) } }
                            for (m, t) in models.enumerated() {
                                let out = t.forward(batch.inputs, mode: .inference)
                                teacherOutputs[m].resize(to: out.shape)
                                teacherOutputs[m].pointer.update(from: out.pointer, count: out.count)
                            }
                            teacherBatch = teacherOutputs[0]
                        } else {
                            teacherBatch = teacherLogits
                        }
                        let output: TeacherOutput
                        if teacherOutputs.count > 1 {
                            output = .ensembleLogits(teacherOutputs.map { UnsafeBufferPointer($0.buffer) })
                        } else {
                            output = .logits(UnsafeBufferPointer(teacherBatch.buffer))
                        }
                        let labels = batch.labels ?? [Int32](repeating: Examples.noLabel, count: n)
                        let needsLabels = loss.alpha < 1
                        let result = try labels.withUnsafeBufferPointer { y in
                            try step.run(batch: batch.inputs, teacher: output, labels: needsLabels || batch.labels != nil ? y : nil, loss: loss)
                        }
                        value = result.value
                        logits = result.logits
                    } else {
                        let labels = batch.labels!
                        let result = try labels.withUnsafeBufferPointer { y in
                            try step.runIgnoringUnlabelled(batch: batch.inputs, labels: y)
                        }
                        plainLoss = result.loss
                        logits = result.logits
                    }
                } catch let error as LossError {
                    restore(best, into: parameters)
                    throw TrainingError.diverged(epoch: epoch + 1, batch: batchInEpoch + 1, detail: "\(error)")
                }
                let total = Double(value?.loss ?? plainLoss)
                guard total.isFinite else {
                    restore(best, into: parameters)
                    throw TrainingError.diverged(epoch: epoch + 1, batch: batchInEpoch + 1, detail: "the loss is \(total)")
                }
                lossSum += total
                if let v = value {
                    softSum += Double(v.softLoss); hasSoft = true
                    if let h = v.hardLoss { hardSum += Double(h); hasHard = true }
                } else {
                    hardSum += total; hasHard = true
                }
                if let labels = batch.labels {
                    for r in 0..<n where labels[r] >= 0 {
                        labelled += 1
                        var bestClass = 0
                        for c in 1..<model.classes where logits[r * model.classes + c] > logits[r * model.classes + bestClass] { bestClass = c }
                        if bestClass == Int(labels[r]) { correct += 1 }
                    }
                }
                batches += 1
                seen += n
                globalStep += 1
                batchInEpoch += 1
                progress?.batch(round: round, rounds: rounds, step: globalStep - totalSteps * (round - 1) / rounds,
                                steps: roundEnd - totalSteps * (round - 1) / rounds,
                                examplesPerSecond: Double(seen) / max(now() - roundStart, 1e-9),
                                loss: lossSum / Double(batches), accuracy: labelled > 0 ? Double(correct) / Double(labelled) : nil,
                                elapsed: now() - start, totalSteps: totalSteps, stepsDone: globalStep)
            }
            guard batches > 0 else { break }
            var validationAccuracy: Double?
            if let validation, validation.count > 0, let labels = validation.labels {
                let logits = try inferLogits(model: model, examples: validation)
                validationAccuracy = EvaluationReport(logits: logits, labels: labels, classes: model.classes).accuracy
            }
            let record = EpochRecord(
                epoch: round, step: globalStep, loss: lossSum / Double(batches),
                softLoss: hasSoft ? softSum / Double(batches) : nil, hardLoss: hasHard ? hardSum / Double(batches) : nil,
                trainingAccuracy: labelled > 0 ? Double(correct) / Double(labelled) : 0,
                validationAccuracy: validationAccuracy, learningRate: schedule.rate(at: max(globalStep - 1, 0)),
                seconds: now() - start)
            records.append(record)
            if let v = validationAccuracy, bestAccuracy == nil || v > bestAccuracy! {
                bestAccuracy = v
                bestEpoch = round
                best = parameters.map { $0.value.values }
                sinceImprovement = 0
            } else if validationAccuracy == nil {
                bestEpoch = round
                best = parameters.map { $0.value.values }
            } else {
                sinceImprovement += 1
            }
            progress?.round(record, best: bestEpoch == round)
            if let patience = options.earlyStoppingPatience, sinceImprovement >= patience {
                stoppedEarly = true
                break
            }
        }
        restore(best, into: parameters)
        return TrainingSummary(records: records, bestEpoch: bestEpoch, bestValidationAccuracy: bestAccuracy,
                               stoppedEarly: stoppedEarly, interrupted: stopRequested, seconds: now() - start)
    }

    private func restore(_ values: [[Float]], into parameters: [Parameter]) {
        for (p, v) in zip(parameters, values) {
            v.withUnsafeBufferPointer { p.value.pointer.update(from: $0.baseAddress!, count: v.count) }
        }
    }
}

/// Receives a trainer's progress.
public protocol ProgressReporter: AnyObject {
    func batch(round: Int, rounds: Int, step: Int, steps: Int, examplesPerSecond: Double, loss: Double,
               accuracy: Double?, elapsed: Double, totalSteps: Int, stepsDone: Int)
    func round(_ record: EpochRecord, best: Bool)
}

/// Monotonic time in seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
