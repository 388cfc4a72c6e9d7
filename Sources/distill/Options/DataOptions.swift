import ArgumentParser
import DistillKit
import Foundation

/// Where the data is and how it is split.
struct DataOptions: ParsableArguments {
    @Option(
        help:
            "Data directory (MNIST or NPY layout; text: train.txt, test.txt [, valid.txt]; tagged sentences: train.conll, test.conll [, valid.conll, unlabelled.conll]). Default: $DISTILL_DATA, else /usr/share/datasets/fashion-mnist."
    )
    var data: String?

    @Option(
        help: ArgumentHelp(
            "Validation examples (bytes for text without valid.txt, sentences for CoNLL without valid.conll) held out from the end of the training set: a count (5000) or a fraction (0.1). Default: 5000 or 10%, whichever is smaller.",
            valueName: "n"))
    var validationSplit: String?

    @Option(
        help: ArgumentHelp(
            "The number of classes, for data whose labels leave some classes without examples. Default: a teacher's class count, else the largest label + 1 (refused when more than half of those classes have no label).",
            valueName: "n"))
    var classes: Int?

    func validate() throws {
        if let classes, classes < 1 || classes > DataDirectory.maximumClasses {
            throw ValidationError(
                "--classes must be from 1 to \(DataDirectory.maximumClasses), got \(classes)")
        }
        if let v = validationSplit, ValidationSplit(v) == nil {
            throw ValidationError(
                "--validation-split must be a count (e.g. 5000) or a fraction in (0, 1), got '\(v)'"
            )
        }
    }

    var split: ValidationSplit { validationSplit.flatMap(ValidationSplit.init) ?? .automatic }

    /// The data directory `--data`, `$DISTILL_DATA` or the system's Fashion-MNIST names.
    func directory() throws -> String {
        try DataDirectory.resolveAny(data, environment: ProcessInfo.processInfo.environment)
    }

    /// The text data set of a directory holding `train.txt`, or nil for examples.
    func loadText() throws -> TextDataset? {
        let dir = try directory()
        guard TextDataset.holdsText(dir) else { return nil }
        if classes != nil {
            throw ValidationError("--classes: text has \(TextDataset.classes) classes, the bytes")
        }
        return try TextDataset.load(dir, split: split)
    }

    /// The tagged sentences of a directory holding `train.conll`, or nil for other data.
    func loadTagging() throws -> TaggingDataset? {
        let dir = try directory()
        guard TaggingDataset.holdsCoNLL(dir) else { return nil }
        if classes != nil {
            throw ValidationError("--classes: a tagger's classes are the training file's tags")
        }
        return try TaggingDataset.load(dir, split: split)
    }

    /// Loads the data set and carves the validation split.
    /// - Parameter teacherClasses: the class count of the teacher, which `--classes` must equal
    ///   when given; every label is checked against it.
    func load(teacherClasses: Int? = nil) throws -> (
        dataset: Dataset, training: Examples, validation: Examples
    ) {
        if let classes, let teacherClasses, classes != teacherClasses {
            throw ValidationError("--classes \(classes): the teacher has \(teacherClasses) classes")
        }
        let dir = try directory()
        if TextDataset.holdsText(dir) {
            throw ValidationError(
                "\(dir) holds text (train.txt), for language models; this command takes examples (the MNIST or NPY layout)"
            )
        }
        let dataset = try DataDirectory.load(
            resolving: data, environment: ProcessInfo.processInfo.environment,
            classes: classes ?? teacherClasses)
        let (training, validation) = try dataset.training.splittingValidation(split)
        return (dataset, training, validation)
    }
}

/// The network to build.
struct ArchitectureOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Architecture: mlp[:H1,H2,...], cnn:C1,C2,...[/fc:H1,...], transformer:layers=L,dim=D,heads=H,context=N[,mlp=M] (text), encoder:layers=L,dim=D,heads=H,context=N[,mlp=M,buckets=B] or window:dim=D,hidden=H[,radius=R,context=N,buckets=B] (taggers, CoNLL; B rows of hashed word features, 65536 by default), e.g. mlp:1200,1200, cnn:32,64/fc:256, transformer:layers=2,dim=64,heads=4,context=128, encoder:layers=2,dim=128,heads=4,context=64, window:dim=64,hidden=256.",
            valueName: "spec"))
    var arch: String

    @Option(
        help: "Dropout after hidden layers (mlp) or before hidden dense layers (cnn), in [0, 1).")
    var dropout: Float = 0

    @Option(help: "Dropout on the inputs, in [0, 1).")
    var inputDropout: Float = 0

    func validate() throws {
        _ = try ArchitectureSpec(parsing: arch)
        guard dropout >= 0, dropout < 1 else {
            throw ValidationError("--dropout must be in [0, 1), got \(dropout)")
        }
        guard inputDropout >= 0, inputDropout < 1 else {
            throw ValidationError("--input-dropout must be in [0, 1), got \(inputDropout)")
        }
    }

    /// A sequence model over bytes for `text` (a transformer; its context is the window), after
    /// checking that its training fits in memory.
    func build(forText text: TextDataset, training: TrainingOptions) throws -> Model {
        let spec = try ArchitectureSpec(parsing: arch)
        guard let shape = spec.transformer else {
            throw ValidationError(
                "--arch \(arch): text needs a sequence model, transformer:layers=L,dim=D,heads=H,context=N"
            )
        }
        try checkMemory(
            spec, inputShape: [shape.context], classes: TextDataset.classes, training: training,
            examples: max(1, text.training.predictions / shape.context))
        var generator = SeededGenerator(seed: training.seed)
        return try Model(
            spec: spec, inputShape: [shape.context], classes: TextDataset.classes, dropout: dropout,
            inputDropout: inputDropout, generator: &generator)
    }

    /// A tagger of `tags` classes (an encoder or a window tagger; its context counts words), after
    /// checking that its training fits in memory.
    func build(forTagging tags: Int, pieces: Int, training: TrainingOptions) throws -> Model {
        let spec = try ArchitectureSpec(parsing: arch)
        guard spec.kind == .encoder || spec.kind == .window, let context = spec.context else {
            throw ValidationError(
                "--arch \(arch): tagged sentences need a tagger, encoder:layers=L,dim=D,heads=H,context=N or window:dim=D,hidden=H"
            )
        }
        let shape = [context, ArchitectureSpec.wordFeatureSlots]
        try checkMemory(
            spec, inputShape: shape, classes: tags, training: training, examples: pieces)
        var generator = SeededGenerator(seed: training.seed)
        return try Model(
            spec: spec, inputShape: shape, classes: tags, dropout: dropout,
            inputDropout: inputDropout, generator: &generator)
    }

    /// Refuses an architecture whose training on `examples` with `training` would not fit in the
    /// machine's memory, before anything is allocated.
    func checkMemory(for examples: Examples, training: TrainingOptions) throws {
        try checkMemory(
            try ArchitectureSpec(parsing: arch), inputShape: examples.exampleShape,
            classes: examples.classes,
            training: training, examples: examples.count)
    }

    /// The memory check for `spec` on examples of `inputShape` (the error names the flag).
    private func checkMemory(
        _ spec: ArchitectureSpec, inputShape: [Int], classes: Int, training: TrainingOptions,
        examples: Int
    ) throws {
        let memory = TrainingMemory(
            spec: spec, inputShape: inputShape, classes: classes,
            dropout: dropout > 0 || inputDropout > 0,
            options: training, examples: examples)
        do { try memory.check(spec) } catch { throw ValidationError("--arch \(error)") }
    }

    /// The model to train on `examples` with `training` (its seed draws the weights), after
    /// `checkMemory`.
    func build(for examples: Examples, training: TrainingOptions) throws -> Model {
        try checkMemory(for: examples, training: training)
        var generator = SeededGenerator(seed: training.seed)
        return try Model(
            spec: ArchitectureSpec(parsing: arch), inputShape: examples.exampleShape,
            classes: examples.classes,
            dropout: dropout, inputDropout: inputDropout, normalization: examples.normalization,
            generator: &generator)
    }
}

/// How to train.
struct TrainingFlags: ParsableArguments {
    @Option(help: "Passes over the training set.") var epochs: Int = 10
    @Option(help: "Total optimiser steps instead of epochs (validation 20 times over the run).")
    var steps: Int?
    @Option(help: "Examples (text: windows) per batch.") var batchSize: Int = 128
    @Option(help: "sgd, adam or adamw. Default: sgd; adamw for text.") var optimizer:
        TrainingOptions.OptimizerKind?
    @Option(help: "Learning rate. Default: 0.05; 1e-3 for text.") var lr: Float?
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(
        help: "Weight decay (L2 for sgd and adam, decoupled for adamw). Default: 0; 0.01 for text.")
    var weightDecay: Float?
    @Option(help: "Learning-rate schedule: constant, step (x0.1 every 5 epochs) or cosine.")
    var schedule: TrainingOptions.ScheduleKind = .cosine
    @Option(help: "Linear warm-up steps. Default: 0; for text a tenth of the run, at most 100.")
    var warmup: Int?
    @Option(help: "Max-norm constraint on each unit's incoming weights.") var maxNorm: Float?
    @Option(
        help:
            "Random translation of images by up to this many pixels (a random crop of the image padded by as many)."
    )
    var jitter: Int = 0
    @Flag(help: "Mirror each image left to right with probability 1/2 (for clothing, not digits).")
    var flip = false
    @Option(
        help: "Cutout: set a square of this many pixels at a random centre of each image to 0.")
    var cutout: Int = 0
    @Option(
        help: ArgumentHelp(
            "Mixup: mix each batch's examples in pairs, lambda x_i + (1 - lambda) x_j with lambda ~ Beta(a, a) per batch (0.2 to 1 is usual); the hard term mixes their labels likewise, the teachers run on the mixed inputs.",
            valueName: "a"))
    var mixup: Float = 0
    @Option(
        help: ArgumentHelp(
            "Stop after this many validations without improvement (the best weights are kept).",
            valueName: "patience"))
    var earlyStopping: Int?
    @Option(help: "Random seed: the same seed and data give the same model file.") var seed:
        UInt64 = 0
    @Option(help: "Keep labels for the first N training examples only.") var labelled: Int?
    @Flag(help: "No progress output.") var quiet = false
    @Option(
        help: ArgumentHelp(
            "Save the full training state every N steps (and after every validation) to MODEL's .state.safetensors, for --resume.",
            valueName: "N"))
    var checkpointEvery: Int?
    @Flag(
        help:
            "Continue from the training state beside --out (same settings); the result equals an uninterrupted run."
    )
    var resume = false

    /// The options for examples (images, features): SGD at 0.05 unless the flags say otherwise.
    var options: TrainingOptions { options(text: false) }

    /// The options for a language model on text: AdamW at 1e-3, decoupled weight decay 0.01, a
    /// linear warm-up over a tenth of the run (at most 100 steps), then the cosine schedule,
    /// unless the flags say otherwise.
    var textOptions: TrainingOptions { options(text: true) }

    private func options(text: Bool) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs
        o.steps = steps
        o.batchSize = batchSize
        o.optimizer = optimizer ?? (text ? .adamw : .sgd)
        o.learningRate = lr ?? (text ? 1e-3 : 0.05)
        o.momentum = momentum
        o.nesterov = nesterov
        o.weightDecay = weightDecay ?? (text ? 0.01 : 0)
        o.schedule = schedule
        o.warmupSteps = warmup ?? (text ? min(100, (steps ?? epochs * 100) / 10) : 0)
        o.maxNorm = maxNorm
        o.jitter = jitter
        o.flip = flip
        o.cutout = cutout
        o.mixup = mixup
        o.earlyStoppingPatience = earlyStopping
        o.seed = seed
        return o
    }

    func validate() throws {
        try options.validate()
        if let labelled, labelled < 0 {
            throw ValidationError("--labelled must be >= 0, got \(labelled)")
        }
        if let n = checkpointEvery, n < 1 {
            throw ValidationError("--checkpoint-every must be at least 1, got \(n)")
        }
    }
}

extension TrainingOptions.OptimizerKind: ExpressibleByArgument {}
extension TrainingOptions.ScheduleKind: ExpressibleByArgument {}
extension DistillationLoss.Objective: ExpressibleByArgument {}
extension DistillationLoss.HardReduction: ExpressibleByArgument {}
extension TopKMass: ExpressibleByArgument {}

/// Checks that an output file can be written: its directory exists.
func checkOutputPath(_ path: String, flag: String = "--out") throws {
    // The text before the last "/" ("/" itself for "/name"); Foundation's deletingLastPathComponent
    // traps on a one-character path.
    let directory =
        path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? ""
    var isDirectory: ObjCBool = false
    if !directory.isEmpty
        && !(FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
            && isDirectory.boolValue)
    {
        throw ValidationError("\(flag) \(path): the directory \(directory) does not exist")
    }
}

/// The metrics log path beside a model file: `model.safetensors` -> `model.metrics.jsonl`.
func metricsPath(for model: String) -> String { sibling(of: model, suffix: ".metrics.jsonl") }

/// The training state path beside a model file: `model.safetensors` -> `model.state.safetensors`.
func statePath(for model: String) -> String { sibling(of: model, suffix: ".state.safetensors") }

private func sibling(of model: String, suffix: String) -> String {
    (model.hasSuffix(".safetensors") ? String(model.dropLast(".safetensors".count)) : model)
        + suffix
}
