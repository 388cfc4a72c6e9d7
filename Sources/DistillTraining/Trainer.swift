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
public struct EpochRecord: Sendable, Equatable, Codable {
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
    /// The temperature a run that learns it (CTKD) ended with.
    public let learnedTemperature: Float?
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

/// What a trainer learns from and validates on.
public enum TrainingData {
    /// Examples with labels (some or all), batched by `Batcher`.
    case examples(training: Examples, validation: Examples?)
    /// Text for a language model over bytes, in windows of the model's context (`TextWindows`).
    case text(training: TextSplit, validation: TextSplit?)
    /// Tagged sentences for a tagger, in pieces of the model's context (`TaggedBatches`); the
    /// model's classes are `tags`, and validation scores entities when `bio`.
    case tagging(
        training: TaggedSentences, validation: TaggedSentences?, tags: [String], bio: Bool)
}

/// Trains a model on labels, or distils it from a teacher, validating as it goes.
///
/// Without a teacher the loss is cross-entropy over labelled examples. With one, it is the
/// distillation loss: soft targets on every example, the hard term on those with a label. After
/// each round (an epoch, or a slice of the steps) the model is validated; the weights with the
/// best validation accuracy are kept and restored at the end (early stopping ends the run after
/// `patience` rounds without improvement).
///
/// What varies between runs has a small type of its own: the `TeacherSource` gives each batch's
/// teacher output, the `TemperaturePolicy` each step's loss, the `Checkpointer` saves the state.
public final class Trainer {
    public let model: Model
    public let options: TrainingOptions
    /// What the model learns from and is validated on.
    public let data: TrainingData
    /// How much of a validation text each round scores (from its start).
    public static let textValidationBytes = 1 << 16
    /// Where the soft targets come from; nil for a run on labels alone.
    public let teacher: (any TeacherSource)?
    /// The loss's temperature over the run; nil without a teacher.
    public let temperature: (any TemperaturePolicy)?
    /// A tagger's validation pieces, their features hashed in the first round and kept.
    private var validationBatches: TaggedBatches?

    /// - Parameters:
    ///   - teacher: the soft targets, with `loss`; nil to train on labels.
    ///   - temperature: fixed (the loss's own), scheduled or learned.
    /// - Throws: `TrainingError` for options or combinations that cannot run (see
    ///   `TemperatureMethod.check`), or a model, data and teacher that do not fit each other.
    public convenience init(
        model: Model, options: TrainingOptions, training: Examples, validation: Examples?,
        teacher: TeacherSignal? = nil, loss: DistillationLoss? = nil,
        temperature: TemperatureMethod = .fixed
    ) throws {
        try options.validate()
        guard training.count > 0 else {
            throw TrainingError.invalidOption("there are no training examples")
        }
        guard
            Array(training.exampleShape) == model.inputShape
                || training.featureCount == model.inputShape.reduce(1, *)
        else {
            throw TrainingError.incompatible(
                "the model takes inputs \(model.inputShape), the data has \(training.exampleShape)")
        }
        guard training.classes <= model.classes else {
            throw TrainingError.incompatible(
                "the data has \(training.classes) classes, the model \(model.classes)")
        }
        switch (teacher, loss) {
        case (nil, _):
            guard training.labelledCount > 0 else {
                throw TrainingError.invalidOption(
                    "no training example has a label; distil from a teacher instead")
            }
        case (.some, nil):
            throw TrainingError.invalidOption("a teacher needs a distillation loss")
        case (.some(let signal), .some(let loss)):
            try temperature.check(
                loss: loss, teachers: signal.teacherCount, topK: signal.topKMass,
                softWarmup: options.softWarmupSteps)
        }
        if case .rows(let rows)? = teacher,
            rows.width != model.classes || rows.count < training.count
        {
            throw TrainingError.incompatible(
                "teacher logits are [\(rows.count), \(rows.width)]; \(training.count) examples of \(model.classes) classes need [\(training.count), \(model.classes)] or more rows"
            )
        }
        if case .models(let models)? = teacher {
            for t in models
            where t.classes != model.classes
                || t.inputShape.reduce(1, *) != model.inputShape.reduce(1, *)
            {
                throw TrainingError.incompatible(
                    "a teacher has \(t.classes) classes and input \(t.inputShape); the student has \(model.classes) and \(model.inputShape)"
                )
            }
        }
        self.init(
            model: model, options: options,
            data: .examples(training: training, validation: validation), teacher: teacher,
            loss: loss,
            temperature: temperature)
    }

    /// A language model trained on windows of `training` (its context long, at seeded random
    /// offsets) to predict each next byte, validated by next-byte accuracy on the first
    /// `textValidationBytes` of `validation`.
    /// With a teacher, the loss is the distillation loss at every position: teacher models run on
    /// the same windows (`TeacherSignal.models`), or cached rows (`TeacherSignal.rows`) with one row
    /// per byte of the whole training file but the last, in order (`TextLogits` writes them).
    /// - Throws: `TrainingError` when the model is not a sequence model over bytes, the text is
    ///   shorter than a window, or the options cannot run.
    public convenience init(
        model: Model, options: TrainingOptions, text training: TextSplit, validation: TextSplit?,
        teacher: TeacherSignal? = nil, loss: DistillationLoss? = nil,
        temperature: TemperatureMethod = .fixed
    ) throws {
        try options.validate()
        try model.checkByteLanguageModel()
        guard training.count > model.inputShape[0] else {
            throw TrainingError.invalidOption(
                "\(training.bytes.path): the training text has \(training.count) bytes; the model's context \(model.inputShape[0]) needs at least \(model.inputShape[0] + 1)"
            )
        }
        try options.refuseAugmentation()
        switch (teacher, loss) {
        case (nil, _): break
        case (.some, nil): throw TrainingError.invalidOption("a teacher needs a distillation loss")
        case (.some(.rows(let rows)), .some(let loss)):
            try temperature.check(
                loss: loss, teachers: 1, topK: teacher?.topKMass,
                softWarmup: options.softWarmupSteps)
            guard rows.width == model.classes, rows.count >= training.range.upperBound - 1 else {
                throw TrainingError.incompatible(
                    "teacher logits are [\(rows.count), \(rows.width)]; \(training.bytes.path) needs [\(training.bytes.count - 1), \(model.classes)] (one row per byte but the last, in order)"
                )
            }
        case (.some(.models(let models)), .some(let loss)):
            try temperature.check(
                loss: loss, teachers: models.count, topK: nil, softWarmup: options.softWarmupSteps)
            for t in models where t.classes != model.classes || t.inputShape != model.inputShape {
                throw TrainingError.incompatible(
                    "a teacher takes \(t.inputShape) with \(t.classes) classes; the student takes \(model.inputShape) with \(model.classes)"
                )
            }
        }
        self.init(
            model: model, options: options, data: .text(training: training, validation: validation),
            teacher: teacher, loss: loss,
            temperature: temperature)
    }

    /// A tagger trained on the words of `training`'s sentences (pieces of the model's context,
    /// padding masked), validated by entity F1 on `validation` when the tags are BIO (`bio`), by
    /// token accuracy otherwise.
    /// With a teacher, the loss is the distillation loss at every word (unlabelled sentences:
    /// the soft term alone): teacher taggers run on the same pieces, or cached rows
    /// (`TeacherSignal.rows`) with one row per word in `TaggingDataset`'s numbering.
    /// - Throws: `TrainingError` when the model is not a tagger of `tags.count` classes, no
    ///   sentence is labelled and there is no teacher, or the options cannot run.
    public convenience init(
        model: Model, options: TrainingOptions, tagged training: TaggedSentences,
        validation: TaggedSentences?, tags: [String], bio: Bool, teacher: TeacherSignal? = nil,
        loss: DistillationLoss? = nil, temperature: TemperatureMethod = .fixed
    ) throws {
        try options.validate()
        guard model.isTagger, model.classes == tags.count else {
            throw TrainingError.incompatible(
                "the model is not a tagger of \(tags.count) tags (an encoder: or window: architecture)"
            )
        }
        try options.refuseAugmentation()
        switch (teacher, loss) {
        case (nil, _):
            guard training.labelledSentences > 0 else {
                throw TrainingError.invalidOption(
                    "no training sentence has tags; distil from a teacher instead")
            }
        case (.some, nil): throw TrainingError.invalidOption("a teacher needs a distillation loss")
        case (.some(let signal), .some(let loss)):
            if case .learned = temperature {
                throw TrainingError.invalidOption(
                    "a learned temperature (ctkd) is not available for taggers (padded positions would count)"
                )
            }
            try temperature.check(
                loss: loss, teachers: signal.teacherCount, topK: signal.topKMass,
                softWarmup: options.softWarmupSteps)
            if case .models(let models) = signal {
                for t in models where t.classes != model.classes || !t.isTagger {
                    throw TrainingError.incompatible(
                        "a teacher is not a tagger of \(model.classes) tags (it has \(t.classes) classes)"
                    )
                }
            }
            if case .rows(let rows) = signal, rows.width != model.classes {
                throw TrainingError.incompatible(
                    "teacher logits have \(rows.width) columns; the tags are \(model.classes)")
            }
        }
        self.init(
            model: model, options: options,
            data: .tagging(training: training, validation: validation, tags: tags, bio: bio),
            teacher: teacher, loss: loss, temperature: temperature)
    }

    /// The checked parts put together.
    private init(
        model: Model, options: TrainingOptions, data: TrainingData, teacher: TeacherSignal?,
        loss: DistillationLoss?, temperature: TemperatureMethod
    ) {
        self.model = model
        self.options = options
        self.data = data
        self.teacher = teacher?.makeSource()
        self.temperature = teacher == nil ? nil : loss.map { temperature.makePolicy(loss: $0) }
    }

    /// Runs training.
    /// - Parameters:
    ///   - progress: receives every batch and every validation.
    ///   - checkpoint: where and how often to save the training state; nil for never.
    ///   - resume: a state saved by an earlier run with the same settings, to continue from.
    /// - Throws: `TrainingError.diverged` when the loss or logits stop being finite (the best
    ///   weights so far are restored first).
    public func run(
        progress: ProgressReporter? = nil, checkpoint: Checkpointing? = nil,
        resume: TrainingState? = nil
    ) throws -> TrainingSummary {
        let batcher: any BatchSource
        switch data {
        case .examples(let training, _):
            batcher = try Batcher(
                examples: training, batchSize: options.batchSize, shuffle: true, seed: options.seed,
                jitter: options.jitter, flip: options.flip, cutout: options.cutout,
                mixup: options.mixup, teacherRows: teacher?.rows)
        case .text(let training, _):
            batcher = try TextWindows(
                split: training, context: model.inputShape[0], batchSize: options.batchSize,
                seed: options.seed, teacherRows: teacher?.rows)
        case .tagging(let training, _, let tags, _):
            batcher = try TaggedBatches(
                sentences: training, tags: tags, context: model.inputShape[0],
                batchSize: options.batchSize, seed: options.seed, teacherRows: teacher?.rows,
                buckets: model.featureBuckets!)
        }
        let totalSteps = options.steps ?? options.epochs * batcher.batchesPerEpoch
        let rounds = options.steps.map { max(1, min(options.validations, $0)) } ?? options.epochs
        let schedule = options.makeSchedule(
            totalSteps: totalSteps, stepsPerEpoch: batcher.batchesPerEpoch)
        let step = TrainingStep(model: model, optimizer: options.makeOptimizer())
        let parameters = model.parameters
        let state = resume ?? TrainingState(best: parameters.map { $0.value.values })
        if let resume {
            try resume.apply(to: model, optimizer: step.optimizer, temperature: temperature)
        }
        if let checkpoint { state.settings = checkpoint.settings }
        let start = monotonicSeconds() - state.elapsed
        let checkpointer = Checkpointer(
            checkpoint, model: model, optimizer: step.optimizer, temperature: temperature,
            start: start)
        batcher.start(epoch: state.epoch)
        // the same batches as before the stop
        for _ in 0..<state.batchInEpoch { _ = batcher.next() }
        var interrupted = false
        run: while state.round <= rounds {
            let round = state.round
            let (roundBegin, roundEnd) = (
                totalSteps * (round - 1) / rounds, totalSteps * round / rounds
            )
            let roundStart = monotonicSeconds()
            while state.globalStep < roundEnd {
                if stopRequested {
                    interrupted = true
                    try checkpointer.save(state)
                    break run
                }
                guard let batch = batcher.next() else {
                    state.startEpoch()
                    batcher.start(epoch: state.epoch)
                    continue
                }
                step.optimizer.learningRate = schedule.rate(at: state.globalStep)
                let (loss, value, logits) = try train(
                    step, on: batch, at: state.globalStep, of: totalSteps, state: state)
                state.sums.add(
                    loss: loss, value: value, logits: logits, labels: batch.labels,
                    classes: model.classes)
                state.globalStep += 1
                state.batchInEpoch += 1
                progress?.batch(
                    round: round, rounds: rounds, step: state.globalStep - roundBegin,
                    steps: roundEnd - roundBegin,
                    itemsPerSecond: Double(
                        (batch.mask?.count { $0 } ?? batch.labels?.count ?? batch.count)
                            * (state.globalStep - roundBegin))
                        / max(monotonicSeconds() - roundStart, 1e-9),
                    loss: state.sums.loss / Double(state.sums.batches),
                    accuracy: state.sums.accuracy,
                    elapsed: monotonicSeconds() - start, totalSteps: totalSteps,
                    stepsDone: state.globalStep)
                try checkpointer.stepDone(state, roundEnd: roundEnd)
            }
            guard state.sums.batches > 0 else { break }
            let record = EpochRecord(
                round: round, sums: state.sums, step: state.globalStep,
                validationAccuracy: try validate(state, step: step),
                learningRate: schedule.rate(at: max(state.globalStep - 1, 0)),
                seconds: monotonicSeconds() - start)
            let improved = state.close(record, parameters: parameters)
            progress?.round(record, best: improved)
            try checkpointer.roundDone(state, rounds: rounds)
            if let patience = options.earlyStoppingPatience, state.sinceImprovement >= patience {
                state.stoppedEarly = true
                break
            }
        }
        state.restoreBest(into: parameters)
        if !interrupted { checkpointer.finished() }
        return TrainingSummary(
            records: state.records, bestEpoch: state.bestEpoch,
            bestValidationAccuracy: state.bestAccuracy,
            stoppedEarly: state.stoppedEarly, interrupted: interrupted,
            seconds: monotonicSeconds() - start,
            learnedTemperature: temperature?.learnedTemperature)
    }

    /// One optimisation step on `batch`: the teacher's output and this step's loss when
    /// distilling, cross-entropy otherwise.
    /// - Returns: the batch's loss before the update, its terms when distilling, and the logits.
    /// - Throws: `TrainingError.diverged` (after restoring the best weights) when the loss fails
    ///   or is not finite.
    private func train(
        _ step: TrainingStep, on batch: Batch, at k: Int, of totalSteps: Int,
        state: TrainingState
    ) throws -> (loss: Double, value: DistillationLossValue?, logits: Tensor) {
        func diverged(_ detail: String) -> TrainingError {
            state.restoreBest(into: model.parameters)
            return .diverged(epoch: state.epoch + 1, batch: state.batchInEpoch + 1, detail: detail)
        }
        let result: (loss: Double, value: DistillationLossValue?, logits: Tensor)
        do {
            if let teacher, let temperature {
                let loss = try temperature.loss(at: k, of: totalSteps)
                    .scalingSoftTerm(by: options.softWarmupFactor(at: k))
                let output = teacher.output(for: batch)
                let labels =
                    batch.labels ?? [Int32](repeating: Examples.noLabel, count: batch.count)
                let (value, logits) = try labels.withUnsafeBufferPointer { y in
                    try (batch.mask ?? []).withUnsafeBufferPointer { mask in
                        try step.run(
                            batch: batch.inputs, teacher: output, labels: y, loss: loss,
                            mask: batch.mask == nil ? nil : mask,
                            mixing: batch.mixing.map { m in
                                (m.partnerLabels ?? labels.map { _ in Examples.noLabel }, m.lambda)
                            })
                    }
                }
                try temperature.observe(
                    studentLogits: UnsafeBufferPointer(logits.buffer), teacher: output,
                    rows: batch.count,
                    classes: model.classes, hadLabels: value.labelledRows > 0, step: k,
                    of: totalSteps)
                result = (Double(value.loss), value, logits)
            } else {
                let (loss, logits) = try batch.labels!.withUnsafeBufferPointer { y in
                    try step.run(
                        batch: batch.inputs, labels: y,
                        mixing: batch.mixing.map { ($0.partnerLabels!, $0.lambda) })
                }
                result = (Double(loss), nil, logits)
            }
        } catch let error as LossError {
            throw diverged("\(error)")
        }
        guard result.loss.isFinite else { throw diverged("the loss is \(result.loss)") }
        return result
    }

    /// The validation accuracy after a round (next-byte accuracy for text; entity F1 for BIO tags,
    /// token accuracy for other tags), or nil without a labelled validation set.
    /// - Throws: `TrainingError.diverged` when the validation logits are not finite.
    private func validate(_ state: TrainingState, step: TrainingStep) throws -> Double? {
        func diverged() -> TrainingError {  // the round's last update overflowed
            state.restoreBest(into: model.parameters)
            return .diverged(
                epoch: state.epoch + 1, batch: state.batchInEpoch,
                detail: "the validation logits are not finite after this batch's update")
        }
        switch data {
        case .examples(_, let validation):
            guard let validation, validation.count > 0, let labels = validation.labels else {
                return nil
            }
            let logits = try inferLogits(model: model, examples: validation)
            guard logits.allSatisfy(\.isFinite) else { throw diverged() }
            return EvaluationReport(logits: logits, labels: labels, classes: model.classes).accuracy
        case .text(_, let validation):
            guard let validation, validation.predictions > 0 else { return nil }
            // The first 64 KB of the validation text: enough to choose weights, and a round's
            // validation stays a few seconds however long the text (distill eval scores it all).
            let start = validation.range.lowerBound
            let part = TextSplit(
                validation.bytes,
                range: start..<min(validation.range.upperBound, start + Trainer.textValidationBytes)
            )
            do {
                return try TextEvaluation(running: step.split, over: part).accuracy
            } catch is LossError {
                throw diverged()
            }
        case .tagging(_, let validation, let tags, let bio):
            guard let validation, validation.labelledSentences > 0 else { return nil }
            let batches =
                try validationBatches
                ?? TaggerInference.batches(model: model, sentences: validation)
            validationBatches = batches
            let logits = try TaggerInference.logits(
                running: step.split, sentences: validation, batches: batches)
            guard logits.allSatisfy(\.isFinite) else { throw diverged() }
            let e = TaggingEvaluation(
                logits: logits, tags: tags, sentences: validation, bio: bio)
            return e.validationScore
        }
    }
}

extension EpochRecord {
    /// The record of round `round` from its running sums.
    init(
        round: Int, sums: RoundSums, step: Int, validationAccuracy: Double?, learningRate: Float,
        seconds: Double
    ) {
        let batches = Double(sums.batches)
        self.init(
            epoch: round, step: step, loss: sums.loss / batches,
            softLoss: sums.hasSoft ? sums.soft / batches : nil,
            hardLoss: sums.hasHard ? sums.hard / batches : nil,
            trainingAccuracy: sums.accuracy ?? 0,
            validationAccuracy: validationAccuracy, learningRate: learningRate, seconds: seconds)
    }
}

extension TrainingState {
    /// Ends a round with its record: keeps the weights when validation improved (or there is no
    /// validation), counts the rounds since the last improvement, and starts the next round.
    /// - Returns: whether the round's weights are the best so far.
    func close(_ record: EpochRecord, parameters: [Parameter]) -> Bool {
        records.append(record)
        var improved = true
        if let v = record.validationAccuracy {
            improved = bestAccuracy.map { v > $0 } ?? true
            if improved { bestAccuracy = v }
        }
        if improved {
            bestEpoch = record.epoch
            best = parameters.map { $0.value.values }
            sinceImprovement = 0
        } else {
            sinceImprovement += 1
        }
        sums = RoundSums()
        round += 1
        return improved
    }
}

/// Running sums of a round (for its record; they do not affect the weights).
public struct RoundSums: Sendable, Codable {
    public var loss = 0.0, soft = 0.0, hard = 0.0
    public var batches = 0, correct = 0, labelled = 0
    public var hasSoft = false, hasHard = false

    public init() {}

    public var accuracy: Double? { labelled > 0 ? Double(correct) / Double(labelled) : nil }

    mutating func add(
        loss total: Double, value: DistillationLossValue?, logits: Tensor, labels: [Int32]?,
        classes: Int
    ) {
        loss += total
        if let v = value {
            soft += Double(v.softLoss)
            hasSoft = true
            if let h = v.hardLoss {
                hard += Double(h)
                hasHard = true
            }
        } else {
            hard += total
            hasHard = true
        }
        if let labels {
            for r in 0..<labels.count where labels[r] >= 0 {
                labelled += 1
                if indexOfMaximum(logits.pointer + r * classes, count: classes) == Int(labels[r]) {
                    correct += 1
                }
            }
        }
        batches += 1
    }
}

/// Receives a trainer's progress. `itemsPerSecond` counts the rows the loss scores: examples, or
/// positions (tokens) for text.
public protocol ProgressReporter: AnyObject {
    func batch(
        round: Int, rounds: Int, step: Int, steps: Int, itemsPerSecond: Double, loss: Double,
        accuracy: Double?, elapsed: Double, totalSteps: Int, stepsDone: Int)
    func round(_ record: EpochRecord, best: Bool)
}
