import ArgumentParser
import DistillKit
import Foundation

/// `distill distill`: a student taught by a teacher's softened outputs.
struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil a student from one or more teachers (or from cached teacher logits).",
        discussion: """
            Loss: alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y), a mean over \
            examples; the hard term counts labelled examples only. Teacher outputs on the transfer set \
            are computed once in inference mode (with --jitter, --flip, --cutout or --mixup the teachers run on every \
            augmented batch). Several --teacher flags form an ensemble (mean of softened probabilities).
            With --labelled N only the first N training examples keep their labels; the others stay \
            in the transfer set as unlabelled examples (soft targets only). --unlabelled drops all labels, \
            and a data set without training labels (NPY layout without train_y.npy) is distilled soft-only.
            On tagged sentences (train.conll) the loss applies per word, padding masked; --labelled N keeps \
            the tags of the first N labelled sentences, and unlabelled sentences (tags all _, and \
            unlabelled.conll) take the soft term alone. --teacher-logits then holds one row per word of \
            train.conll, then of unlabelled.conll, in file order.
            """)

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var architecture: ArchitectureOptions
    @OptionGroup var training: TrainingFlags
    @Option(help: "A teacher model (repeat for an ensemble).") var teacher: [String] = []
    @Option(
        help: ArgumentHelp(
            "Teacher logits [N, C] for the training file, in file order: an NPY file or a directory of NPY shards (*.npy in name order, float16/32/64), memory-mapped.",
            valueName: "file-or-dir")) var teacherLogits: String?
    @Option(
        help: ArgumentHelp(
            "A teacher's top-k classes for the training file: DIR/values.npy [N, k] (float; log-probabilities, or logits with --top-k-mass renormalise) and DIR/indices.npy [N, k] (int), or DIR/values/ and DIR/indices/ of shards.",
            valueName: "dir"))
    var teacherTopK: String?
    @Option(
        help: ArgumentHelp(
            "What --teacher-top-k does with the probability outside the k classes: rest (the default: one more outcome, matched against the student's mass on the other classes; needs log-probabilities) or renormalise (the teacher's softmax over the k classes; any logits).",
            valueName: "mass"))
    var topKMass: TopKMass = .rest
    @Option(help: "Temperature T (> 0).") var temperature: Float = 4
    @Option(help: "Weight alpha of the soft term, in [0, 1].") var alpha: Float = 0.7
    @Option(
        help:
            "kl (soft targets), hard (teacher's argmax), mse (logit matching), dkd (decoupled KD; Zhao et al., CVPR 2022) or dist (Pearson correlations; Huang et al., NeurIPS 2022)."
    )
    var objective: DistillationLoss.Objective = .kl
    @Option(help: "A factor on the kl objective's soft term (4 to 8: the \"scaled KD\" baseline).")
    var kdScale: Float = 1
    @Option(
        help: ArgumentHelp(
            "Ramp the soft term's weight linearly over the first N steps, from 1/N to its full value (the DKD recipe's loss warm-up); the hard term is not ramped. kl, dkd and dist objectives; not with --adaptive-temperature ctkd.",
            valueName: "N"))
    var softWarmup: Int = 0
    @Option(
        help: ArgumentHelp(
            "With --objective dkd: the weights of the target-class and non-target-class terms.",
            valueName: "alpha,beta"))
    var dkdWeights: FloatList = FloatList(argument: "1,8")!
    @Option(
        help: ArgumentHelp(
            "With --objective dist: the weights of the inter-class and intra-class terms.",
            valueName: "beta,gamma"))
    var distWeights: FloatList = FloatList(argument: "1,1")!
    @Option(
        help: ArgumentHelp(
            "Anneal the temperature from --temperature to --final-temperature over the run: constant, linear or cosine.",
            valueName: "shape"))
    var temperatureSchedule: ScheduleShape = .constant
    @Option(help: "The temperature at the last step, with --temperature-schedule linear|cosine.")
    var finalTemperature: Float?
    @Flag(
        help:
            "Z-score each logit vector before dividing by T, a per-example temperature (Sun et al., CVPR 2024)."
    )
    var logitStandardization = false
    @Option(
        help: ArgumentHelp(
            "Learn the temperature: ctkd (in [1, 21], trained against the student through gradient reversal with a cosine curriculum; Li et al., AAAI 2023), or none.",
            valueName: "method"))
    var adaptiveTemperature: AdaptiveMethod = .none
    @Option(
        help: ArgumentHelp(
            "The rows the hard term is a mean over: labelled (the default; with few labels each labelled row weighs much more than an unlabelled one) or all (every row of the batch alike).",
            valueName: "rows"))
    var hardReduction: DistillationLoss.HardReduction = .labelled
    @Flag(help: "Use no labels at all (soft targets only).") var unlabelled = false
    @Flag(
        help:
            "With --labelled N: the transfer set is the N labelled examples only (no unlabelled ones)."
    ) var labelledOnly = false
    @Option(
        help:
            "Drop class K from the transfer set (the student can still learn it from soft targets)."
    ) var omitClass: Int?
    @Option(help: "Where to write the student (.safetensors).") var out: String

    enum ScheduleShape: String, ExpressibleByArgument, CaseIterable {
        case constant, linear, cosine
    }
    enum AdaptiveMethod: String, ExpressibleByArgument, CaseIterable { case none, ctkd }

    var schedule: TemperatureSchedule? {
        switch temperatureSchedule {
        case .constant: return nil
        case .linear:
            return TemperatureSchedule(
                shape: .linear, initial: temperature, final: finalTemperature ?? temperature)
        case .cosine:
            return TemperatureSchedule(
                shape: .cosine, initial: temperature, final: finalTemperature ?? temperature)
        }
    }

    var temperatureMethod: TemperatureMethod {
        // CTKD's temperature learns at the student's rate.
        if adaptiveTemperature == .ctkd {
            return .learned(learningRate: Double(options.learningRate))
        }
        return schedule.map { .scheduled($0) } ?? .fixed
    }

    var loss: DistillationLoss {
        get throws {
            var loss = try DistillationLoss(
                temperature: temperature, alpha: alpha, objective: objective,
                logitStandardization: logitStandardization, hardReduction: hardReduction)
            for (flag, list) in [("--dkd-weights", dkdWeights), ("--dist-weights", distWeights)] {
                guard list.values.count == 2, list.values.allSatisfy({ $0 >= 0 }) else {
                    throw ValidationError(
                        "\(flag) takes two weights >= 0, comma-separated, got \(list.values)")
                }
            }
            guard kdScale.isFinite, kdScale > 0 else {
                throw ValidationError("--kd-scale must be > 0, got \(kdScale)")
            }
            loss.softScale = kdScale
            loss.dkd = DKDWeights(alpha: dkdWeights.values[0], beta: dkdWeights.values[1])
            loss.dist = DISTWeights(beta: distWeights.values[0], gamma: distWeights.values[1])
            return loss
        }
    }

    /// The training flags' options with the distillation's own (`--soft-warmup`).
    var options: TrainingOptions { withSoftWarmup(training.options) }
    /// The same for text and tagged sentences.
    var textOptions: TrainingOptions { withSoftWarmup(training.textOptions) }
    private func withSoftWarmup(_ options: TrainingOptions) -> TrainingOptions {
        var o = options
        o.softWarmupSteps = softWarmup
        return o
    }

    func validate() throws {
        if temperatureSchedule != .constant {
            guard let t1 = finalTemperature else {
                throw ValidationError(
                    "--temperature-schedule \(temperatureSchedule.rawValue) needs --final-temperature"
                )
            }
            guard t1.isFinite, t1 > 0 else {
                throw ValidationError("--final-temperature must be > 0, got \(t1)")
            }
        } else if finalTemperature != nil {
            throw ValidationError(
                "--final-temperature needs --temperature-schedule linear or cosine")
        }
        guard
            [!teacher.isEmpty, teacherLogits != nil, teacherTopK != nil].filter({ $0 }).count == 1
        else {
            throw ValidationError(
                "give one of --teacher MODEL (one or more), --teacher-logits FILE-OR-DIR and --teacher-top-k DIR"
            )
        }
        guard temperature.isFinite, temperature > 0 else {
            throw ValidationError("--temperature must be > 0, got \(temperature)")
        }
        guard alpha >= 0, alpha <= 1 else {
            throw ValidationError("--alpha must be in [0, 1], got \(alpha)")
        }
        if adaptiveTemperature == .ctkd && temperatureSchedule != .constant {
            throw ValidationError(
                "--adaptive-temperature ctkd takes the kl objective and a single teacher, without a schedule or standardisation"
            )
        }
        try options.validate()  // the training flags' checks, and --soft-warmup's
        try temperatureMethod.check(
            loss: try loss, teachers: max(teacher.count, 1),
            topK: teacherTopK.map { _ in topKMass },
            softWarmup: softWarmup)
        if training.mixup > 0 && teacher.isEmpty {
            throw ValidationError(
                "--mixup needs --teacher MODEL: the teacher must see the mixed inputs (cached logits are for the unmixed ones)"
            )
        }
        if labelledOnly && training.labelled == nil {
            throw ValidationError("--labelled-only needs --labelled N")
        }
        for path in teacher + [teacherLogits, teacherTopK].compactMap({ $0 })
        where !FileManager.default.fileExists(atPath: path) {
            throw ValidationError("\(path): no such file")
        }
        try checkOutputPath(out)
    }

    func run() throws {
        installInterruptHandler()
        // Teacher models first: their class count is the one every label is checked against.
        let teachers = try teacher.map { try Model.load(from: $0) }
        for (path, t) in zip(teacher, teachers).dropFirst() where t.classes != teachers[0].classes {
            throw ValidationError(
                "\(path) has \(t.classes) classes; \(teacher[0]) has \(teachers[0].classes) (an ensemble's members share their classes)"
            )
        }
        if let tagging = try dataOptions.loadTagging() {
            return try distillTagging(tagging, teachers: teachers)
        }
        if let text = try dataOptions.loadText() {
            return try distillText(text, teachers: teachers)
        }
        var (dataset, trainingSet, validation) = try dataOptions.load(
            teacherClasses: teachers.first?.classes)
        let fullCount = dataset.training.count
        if unlabelled {
            trainingSet = trainingSet.keepingLabels(forFirst: 0)
        } else if let n = training.labelled {
            trainingSet =
                labelledOnly
                ? trainingSet.subset(0..<min(n, trainingSet.count))
                : trainingSet.keepingLabels(forFirst: n)
        }
        for t in teachers
        where t.classes != trainingSet.classes
            || t.inputShape.reduce(1, *) != trainingSet.featureCount
        {
            throw ValidationError(
                "a teacher takes \(t.inputShape) with \(t.classes) classes; the data has \(trainingSet.exampleShape) with \(trainingSet.classes)"
            )
        }
        let model = try architecture.build(for: trainingSet, training: options)
        var signal: TeacherSignal
        if let path = teacherLogits {
            signal = try .logits(at: path, trainingFile: fullCount, classes: trainingSet.classes)
        } else if let directory = teacherTopK {
            signal = try .topK(
                at: directory, trainingFile: fullCount, classes: trainingSet.classes, mass: topKMass
            )
        } else {
            do {
                if options.augments || (schedule != nil && teachers.count > 1) {
                    // The teachers run on every batch: augmentation changes the inputs, or (an ensemble
                    // with a temperature schedule) the ensemble's soft targets change with T.
                    signal = try .models(
                        checking: teachers, on: trainingSet, count: training.batchSize)
                } else {
                    if !training.quiet {
                        printError(
                            "computing the teacher's outputs on \(trainingSet.count) training examples (once)"
                        )
                    }
                    signal = try TeacherSignal.cache(
                        teachers, on: trainingSet, temperature: temperature)
                }
            } catch let error as NonFiniteTeacherOutput {
                throw ValidationError("\(teacher[error.member]): \(error)")
            }
        }
        if let k = omitClass {
            (trainingSet, signal) = try signal.omitting(
                class: k, from: trainingSet, trueLabels: dataset.training.labels)
        }
        let trainer = try Trainer(
            model: model, options: options, training: trainingSet, validation: validation,
            teacher: signal, loss: try loss, temperature: temperatureMethod)
        try run(
            trainer, data: dataset.directory, examples: trainingSet.count,
            labelled: trainingSet.labelledCount)
    }

    /// A language model distilled on text from teacher models run on its windows, every position.
    private func distillText(_ text: TextDataset, teachers: [Model]) throws {
        if training.labelled != nil || unlabelled || omitClass != nil {
            throw ValidationError(
                "--labelled, --unlabelled and --omit-class take examples, not text")
        }
        // Cached rows: one per byte of train.txt but the last, in order (what distill logits writes).
        let rows = text.training.bytes.count - 1
        let signal: TeacherSignal
        if let path = teacherLogits {
            signal = try .logits(at: path, trainingFile: rows, classes: TextDataset.classes)
        } else if let directory = teacherTopK {
            signal = try .topK(
                at: directory, trainingFile: rows, classes: TextDataset.classes, mass: topKMass)
        } else {
            signal = .models(teachers)
        }
        let model = try architecture.build(forText: text, training: textOptions)
        let trainer = try Trainer(
            model: model, options: textOptions, text: text.training,
            validation: text.validation,
            teacher: signal, loss: try loss, temperature: temperatureMethod)
        try run(trainer, data: text.directory, examples: text.training.count, labelled: nil)
    }

    /// A tagger distilled on tagged sentences, word by word: from teacher taggers run on the same
    /// sentence pieces, or from cached rows, one per word of train.conll then unlabelled.conll.
    private func distillTagging(_ data: TaggingDataset, teachers: [Model]) throws {
        if omitClass != nil { throw ValidationError("--omit-class takes examples, not sentences") }
        var sentences = data.training
        if unlabelled {
            sentences = sentences.keepingLabels(forFirst: 0)
        } else if let n = training.labelled {
            sentences =
                labelledOnly
                ? sentences.labelledOnly(first: n) : sentences.keepingLabels(forFirst: n)
        }
        var tags = data.tags
        if let first = teachers.first {
            guard let teacherTags = first.tagNames else {
                throw ValidationError("--teacher \(teacher[0]): not a tagger (no tags recorded)")
            }
            for (path, t) in zip(teacher, teachers) where t.tagNames != teacherTags {
                throw ValidationError(
                    "--teacher \(path): its tags differ from \(teacher[0])'s (an ensemble's members share their tags)"
                )
            }
            if let missing = data.tags.first(where: { !teacherTags.contains($0) }) {
                throw ValidationError(
                    "--teacher \(teacher[0]): it has no tag \(missing), which train.conll uses")
            }
            tags = teacherTags
        }
        let fileName = "train.conll and unlabelled.conll (one row per word, in file order)"
        let signal: TeacherSignal
        if let path = teacherLogits {
            signal = try .logits(
                at: path, trainingFile: data.teacherRows, classes: tags.count, fileName: fileName)
        } else if let directory = teacherTopK {
            signal = try .topK(
                at: directory, trainingFile: data.teacherRows, classes: tags.count, mass: topKMass)
        } else {
            signal = .models(teachers)
        }
        let model = try architecture.build(
            forTagging: tags.count, pieces: sentences.sentences.count,
            training: textOptions)
        let trainer = try Trainer(
            model: model, options: textOptions, tagged: sentences,
            validation: data.validation, tags: tags, bio: data.isBIO, teacher: signal,
            loss: try loss, temperature: temperatureMethod)
        var extra = data.metadata
        extra["tags"] = tags.joined(separator: " ")
        try run(
            trainer, data: data.directory, examples: sentences.words,
            labelled: sentences.labelledSentences, extra: extra)
    }

    /// Runs `trainer`, records the run in the model's metadata and writes the model.
    private func run(
        _ trainer: Trainer, data: String, examples: Int, labelled: Int?,
        extra: [String: String] = [:]
    ) throws {
        let summary = try runTrainer(
            trainer, label: "distill", flags: training, out: out,
            settings: settingsText(["distill", architecture.arch, data]))
        let (model, options) = (trainer.model, trainer.options)
        var meta = trainingMetadata(
            data: data, options: options, flags: training, summary: summary, examples: examples)
        meta["temperature"] = "\(temperature)"
        meta["alpha"] = "\(alpha)"
        meta["objective"] = objective.rawValue
        if hardReduction != .labelled { meta["hard_reduction"] = hardReduction.rawValue }
        if softWarmup > 0 { meta["soft_warmup_steps"] = "\(softWarmup)" }
        if let schedule {
            meta["temperature_schedule"] =
                "\(schedule.shape.rawValue) \(schedule.initial) -> \(schedule.final)"
        }
        if logitStandardization { meta["logit_standardization"] = "true" }
        if let learned = summary.learnedTemperature {
            meta["adaptive_temperature"] = "ctkd, final T \(learned)"
        }
        meta["teachers"] =
            teacherLogits ?? teacherTopK.map { "top-k \($0)" } ?? teacher.joined(separator: ",")
        if let labelled { meta["labelled_examples"] = "\(labelled)" }
        if let k = omitClass { meta["omitted_class"] = "\(k)" }
        model.metadata = meta.merging(extra) { $1 }
        try model.save(to: out)
        report(summary, out: out, quiet: training.quiet)
    }
}
