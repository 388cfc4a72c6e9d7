import ArgumentParser
import DistillKit
import Foundation

/// `distill train`: a model trained on labels (a teacher, or a student baseline).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on labels (a teacher, or a student baseline).",
        discussion: """
            Validates after every epoch on the validation split (never the test set); the file holds \
            the best epoch's weights. Writes MODEL and MODEL's metrics log (.metrics.jsonl) beside it.
            Architectures: mlp[:H1,...] (dense ReLU layers) or cnn:C1,...[/fc:H1,...] (3x3 conv, 2x2 \
            max-pool and ReLU per channel count, then dense layers), e.g. mlp:1200,1200, cnn:32,64/fc:256; \
            transformer:... for text (train.txt); encoder:... or window:... for tagged sentences \
            (train.conll: validation by entity F1 for BIO tags, token accuracy otherwise).
            """)

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var architecture: ArchitectureOptions
    @OptionGroup var training: TrainingFlags
    @Option(help: "Where to write the model (.safetensors).") var out: String

    func validate() throws { try checkOutputPath(out) }

    func run() throws {
        installInterruptHandler()
        let settings = settingsText([
            "train", architecture.arch, "\(architecture.dropout)", "\(architecture.inputDropout)",
            try dataOptions.directory(),
        ])
        let model: Model
        let trainer: Trainer
        let examples: Int
        var extra: [String: String] = [:]
        if let tagging = try dataOptions.loadTagging() {
            var sentences = tagging.training
            if let n = training.labelled { sentences = sentences.labelledOnly(first: n) }
            model = try architecture.build(
                forTagging: tagging.tags.count, pieces: sentences.sentences.count,
                training: training.textOptions)
            trainer = try Trainer(
                model: model, options: training.textOptions, tagged: sentences,
                validation: tagging.validation, tags: tagging.tags, bio: tagging.isBIO)
            examples = sentences.words
            extra = tagging.metadata
        } else if let text = try dataOptions.loadText() {
            model = try architecture.build(forText: text, training: training.textOptions)
            trainer = try Trainer(
                model: model, options: training.textOptions, text: text.training,
                validation: text.validation)
            examples = text.training.count
        } else {
            var (_, trainingSet, validation) = try dataOptions.load()
            if let n = training.labelled {
                trainingSet = trainingSet.subset(0..<min(n, trainingSet.count))
            }
            model = try architecture.build(for: trainingSet, training: training.options)
            trainer = try Trainer(
                model: model, options: training.options, training: trainingSet,
                validation: validation)
            examples = trainingSet.count
        }
        let summary = try runTrainer(
            trainer, label: "train", flags: training, out: out, settings: settings)
        model.metadata = trainingMetadata(
            data: try dataOptions.directory(), options: trainer.options, flags: training,
            summary: summary,
            examples: examples
        ).merging(extra) { $1 }
        try model.save(to: out)
        report(summary, out: out, quiet: training.quiet)
    }
}

/// Runs a trainer with console progress, the metrics log and, when asked, training checkpoints
/// and resumption. A diverged run keeps its best weights in `out`.
func runTrainer(
    _ trainer: Trainer, label: String, flags: TrainingFlags, out: String, settings: String
) throws -> TrainingSummary {
    let model = trainer.model
    let log = MetricsLog(
        path: metricsPath(for: out),
        forwardingTo: ConsoleProgress(
            label: label, quiet: flags.quiet, unit: trainer.model.positions > 1 ? "tok/s" : "ex/s")
    )
    let checkpoint = Checkpointing(
        path: statePath(for: out), every: flags.checkpointEvery ?? Int.max,
        settings: settings + " | "
            + settingsText(
                CommandLine.arguments.dropFirst().filter { $0 != "--resume" && $0 != "--quiet" }))
    var resumeState: TrainingState?
    if flags.resume {
        let state = try TrainingState.resume(
            from: checkpoint.path, settings: checkpoint.settings, model: model)
        log.continueAfter(state.records, bestEpoch: state.bestEpoch)
        if !flags.quiet {
            printError("resuming from \(checkpoint.path) at step \(state.globalStep)")
        }
        resumeState = state
    }
    do {
        return try trainer.run(
            progress: log, checkpoint: flags.checkpointEvery == nil ? nil : checkpoint,
            resume: resumeState)
    } catch let error as TrainingError {
        if case .diverged = error { try? model.save(to: out) }
        throw error
    }
}

/// The settings that must match for a resume (everything but --resume and --quiet).
func settingsText(_ parts: [String]) -> String { parts.joined(separator: " ") }

extension TaggingDataset {
    /// What a tagger records of its data: its tags (its classes, in order) and their scheme.
    var metadata: [String: String] {
        ["tags": tags.joined(separator: " "), "tag_scheme": isBIO ? "BIO" : "per-tag"]
    }
}

/// What a trained model records of its run; `examples` counts training examples (bytes for text).
func trainingMetadata(
    data: String, options: TrainingOptions, flags: TrainingFlags, summary: TrainingSummary,
    examples: Int
) -> [String: String] {
    var meta = [
        "data": data, "seed": "\(flags.seed)", "training_examples": "\(examples)",
        "epochs_run": "\(summary.records.count)", "best_epoch": "\(summary.bestEpoch)",
        "optimizer": options.optimizer.rawValue, "lr": "\(options.learningRate)",
        "batch_size": "\(flags.batchSize)",
        "weights": "best validation accuracy (epoch \(summary.bestEpoch))",
    ]
    if let v = summary.bestValidationAccuracy {
        meta["validation_accuracy"] = String(format: "%.4f", v)
    }
    if let n = flags.labelled { meta["labelled"] = "\(n)" }
    if summary.interrupted { meta["interrupted"] = "true" }
    return meta
}

func report(_ summary: TrainingSummary, out: String, quiet: Bool) {
    guard !quiet else { return }
    var line = "wrote \(out) (best epoch \(summary.bestEpoch)"
    if let v = summary.bestValidationAccuracy {
        line += String(format: ", validation accuracy %.4f", v)
    }
    line += String(format: ", %.0f s)", summary.seconds)
    if summary.interrupted { line += "; interrupted: the best model so far was kept" }
    if summary.stoppedEarly { line += "; stopped early" }
    printError(line)
}
