import ArgumentParser
import DistillKit
import Foundation

/// `distill sweep`: which temperature and alpha, chosen on validation, against the baseline.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract:
            "Train one student per (technique, T, alpha, seed) and a label-only baseline per seed; choose on validation accuracy and report test accuracy against the baseline.",
        discussion: """
            The teacher's outputs on the transfer set are computed once. The setting with the best mean \
            validation accuracy over seeds is chosen (never on test); its test accuracy (mean and sample \
            standard deviation over seeds) is reported beside the baseline's. Results go to \
            OUT/sweep.csv and OUT/sweep.json after every run, each run's student and metrics log to \
            OUT/runs/, and OUT/report.html (accuracy against T, training curves, the teacher's softened \
            outputs, confusion matrices) at the end; a sweep started again with the same --out skips the \
            runs already there. Techniques: fixed (T), cosine (annealed from T to 1), \
            standardized (logit standardisation, base T), ctkd (learned temperature).
            On tagged sentences (train.conll) the teacher is a tagger, --labelled N keeps the tags of the \
            first N sentences (the others are the transfer set), and each run is scored by entity F1 (BIO \
            tags) or token accuracy in the accuracy columns; report.html is drawn for examples only.
            """)

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var architecture: ArchitectureOptions
    @OptionGroup var training: TrainingFlags
    @Option(help: "The teacher model.") var teacher: String
    @Option(help: ArgumentHelp("Temperatures, comma-separated.", valueName: "T1,T2,..."))
    var temperatures: FloatList
    @Option(
        help: ArgumentHelp("Weights of the soft term, comma-separated.", valueName: "a1,a2,..."))
    var alphas: FloatList
    @Option(help: ArgumentHelp("Seeds, comma-separated.", valueName: "s1,s2,...")) var seeds:
        String = "1,2,3"
    @Option(
        help: ArgumentHelp(
            "Techniques, comma-separated: fixed, cosine, standardized, ctkd (temperatures), dkd, dist (objectives), kd4, kd8 (plain KD's soft term scaled by 4 or 8).",
            valueName: "t1,..."))
    var techniques: String = "fixed"
    @Option(help: "The sweep's directory (created if missing).") var out: String

    var seedList: [UInt64] {
        seeds.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: " ")) }
    }
    var techniqueList: [SweepTechnique] {
        techniques.split(separator: ",").compactMap {
            SweepTechnique(rawValue: String($0.trimmingCharacters(in: " ")))
        }
    }

    func validate() throws {
        guard temperatures.values.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--temperatures must all be > 0")
        }
        guard alphas.values.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
            throw ValidationError("--alphas must all be in [0, 1]")
        }
        let seedParts = seeds.split(separator: ",", omittingEmptySubsequences: false)
        guard !seedParts.isEmpty, seedParts.count == seedList.count else {
            throw ValidationError("--seeds must be whole numbers, comma-separated, got '\(seeds)'")
        }
        let techniqueParts = techniques.split(separator: ",", omittingEmptySubsequences: false)
        guard !techniqueParts.isEmpty, techniqueParts.count == techniqueList.count else {
            throw ValidationError(
                "--techniques takes fixed, cosine, standardized and ctkd, got '\(techniques)'")
        }
        guard FileManager.default.fileExists(atPath: teacher) else {
            throw ValidationError("\(teacher): no such file")
        }
        try checkOutputPath(out, flag: "--out")  // the parent must exist; the directory is created
    }

    /// The output directory, created if missing.
    func createOutputDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        } catch {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory),
                isDirectory.boolValue
            else {
                throw ValidationError("--out \(out): cannot create the directory")
            }
        }
    }

    /// Prints one finished run's line.
    func printRun(_ r: SweepRun) {
        print(
            String(
                format: "%-10@ %-12@ %5@ %6@ %5d  %7.4f  %8.4f  %7.0f%@", r.kind.rawValue,
                r.technique?.rawValue ?? "-",
                r.temperature.map { "\($0)" } ?? "-", r.alpha.map { "\($0)" } ?? "-",
                Int(r.seed),
                r.validationAccuracy, r.testAccuracy, r.seconds,
                r.diverged ? "  diverged" : ""))
        fflush(nil)  // a line per run, even into a file or pipe
    }

    /// Prints the chosen setting against the baseline.
    func printSummary(_ sweep: Sweep, score: String) {
        guard let s = sweep.summary() else { return }
        print("")
        print(
            String(
                format: "chosen on validation: %@, T %@, alpha %@ (validation %.4f)",
                s.chosen.technique.rawValue,
                "\(s.chosen.temperature)", "\(s.chosen.alpha)", s.chosenValidation))
        print(
            String(
                format: "test %@: distilled %.4f +/- %.4f, baseline %.4f +/- %.4f (%d seeds)",
                score, s.chosenTest.mean,
                s.chosenTest.sd, s.baselineTest.mean, s.baselineTest.sd, s.seeds))
    }

    /// A sweep of taggers on tagged sentences: the teacher tagger's logits on the training
    /// sentences cached once; each run scored by entity F1 (BIO tags) or token accuracy.
    func sweepTagger(_ data: TaggingDataset, teacherModel: Model) throws {
        guard let tags = teacherModel.tagNames else {
            throw ValidationError("--teacher \(teacher): not a tagger (no tags recorded)")
        }
        if let missing = data.tags.first(where: { !tags.contains($0) }) {
            throw ValidationError(
                "--teacher \(teacher): it has no tag \(missing), which train.conll uses")
        }
        if techniqueList.contains(.ctkd) {
            throw ValidationError("--techniques ctkd is not available for taggers")
        }
        let transfer =
            training.labelled.map { data.training.keepingLabels(forFirst: $0) }
            ?? data.training
        let labelledOnly =
            training.labelled.map { data.training.labelledOnly(first: $0) }
            ?? data.training
        printError(
            "computing the teacher's outputs on \(transfer.words) training words (once)")
        let signal = TeacherSignal.rows(
            try TaggerInference.teacherRows(
                model: teacherModel, sentences: transfer, rows: data.teacherRows))
        try createOutputDirectory()
        let sweep = try Sweep(
            directory: out, temperatures: temperatures.values, alphas: alphas.values,
            seeds: seedList, techniques: techniqueList)
        if !sweep.runs.isEmpty {
            printError("resuming \(out): \(sweep.runs.count) runs already finished")
        }
        let score = data.isBIO ? "entity F1" : "token accuracy"
        print(
            "kind       technique     T      alpha  seed  val \(data.isBIO ? "F1 " : "acc")  test \(data.isBIO ? "F1 " : "acc")  seconds"
        )
        try sweep.run(
            score: { model, split in
                let sentences = split == .test ? data.test : data.validation
                return TaggingEvaluation(
                    logits: try TaggerInference.logits(model: model, sentences: sentences),
                    tags: tags, sentences: sentences, bio: data.isBIO
                ).validationScore
            },
            train: { setting, seed, log in
                var options = training.textOptions
                options.seed = seed
                let model = try architecture.build(
                    forTagging: tags.count, pieces: transfer.sentences.count, training: options)
                let trainer: Trainer
                if let setting {
                    trainer = try Trainer(
                        model: model, options: options, tagged: transfer,
                        validation: data.validation, tags: tags, bio: data.isBIO,
                        teacher: signal,
                        loss: try setting.technique.loss(
                            temperature: setting.temperature, alpha: setting.alpha),
                        temperature: setting.technique.method(
                            from: setting.temperature, learningRate: options.learningRate))
                } else {
                    trainer = try Trainer(
                        model: model, options: options, tagged: labelledOnly,
                        validation: data.validation, tags: tags, bio: data.isBIO)
                }
                do {
                    _ = try trainer.run(progress: log)
                    return (model, false)
                } catch let error as TrainingError {
                    guard case .diverged = error else { throw error }
                    printError("warning: \(error) (run recorded as diverged; the sweep goes on)")
                    return (model, true)
                }
            },
            finished: printRun)
        printSummary(sweep, score: score)
        if !sweep.runs.isEmpty {
            printError(
                "\(out)/sweep.csv and sweep.json hold the runs (\(score) in the accuracy columns); report.html is drawn for examples only"
            )
        }
    }

    func run() throws {
        installInterruptHandler()
        let teacherModel = try Model.load(from: teacher)
        if let tagging = try dataOptions.loadTagging() {
            return try sweepTagger(tagging, teacherModel: teacherModel)
        }
        let (dataset, fullTraining, validation) = try dataOptions.load(
            teacherClasses: teacherModel.classes)
        var trainingSet = fullTraining
        let transfer =
            training.labelled.map { fullTraining.keepingLabels(forFirst: $0) } ?? fullTraining
        if let n = training.labelled {
            trainingSet = trainingSet.subset(0..<min(n, trainingSet.count))
        }
        try teacherModel.check(fits: transfer)
        try architecture.checkMemory(for: transfer, training: training.options)
        printError("computing the teacher's outputs on \(transfer.count) training examples (once)")
        let signal: TeacherSignal
        do {
            signal = try TeacherSignal.cache([teacherModel], on: transfer, temperature: 1)
        } catch let error as NonFiniteTeacherOutput {
            throw ValidationError("\(teacher): \(error)")
        }
        try createOutputDirectory()
        let sweep = try Sweep(
            directory: out, temperatures: temperatures.values, alphas: alphas.values,
            seeds: seedList,
            techniques: techniqueList)
        if !sweep.runs.isEmpty {
            printError("resuming \(out): \(sweep.runs.count) runs already finished")
        }
        print("kind       technique     T      alpha  seed  val acc  test acc  seconds")
        try sweep.run(
            test: dataset.test, validation: validation,
            train: { setting, seed, log in
                var options = training.options
                options.seed = seed
                let model = try architecture.build(for: transfer, training: options)
                // A diverged run keeps its best weights and is recorded, marked; the sweep goes on.
                func train(_ trainer: Trainer) throws -> (model: Model, diverged: Bool) {
                    do {
                        _ = try trainer.run(progress: log)
                        return (model, false)
                    } catch let error as TrainingError {
                        guard case .diverged = error else { throw error }
                        printError(
                            "warning: \(error) (run recorded as diverged; the sweep goes on)")
                        return (model, true)
                    }
                }
                guard let setting else {
                    return try train(
                        Trainer(
                            model: model, options: options, training: trainingSet,
                            validation: validation))
                }
                let loss = try setting.technique.loss(
                    temperature: setting.temperature, alpha: setting.alpha)
                return try train(
                    Trainer(
                        model: model, options: options, training: transfer, validation: validation,
                        teacher: signal,
                        loss: loss,
                        temperature: setting.technique.method(
                            from: setting.temperature,
                            learningRate: options.learningRate)))
            },
            finished: printRun)
        printSummary(sweep, score: "accuracy")
        if !sweep.runs.isEmpty {
            let teacherLogits = try inferLogits(model: teacherModel, examples: dataset.test)
            let facts: [(String, String)] = [
                (
                    "data",
                    "\(dataset.directory): \(transfer.count) transfer examples (\(transfer.labelledCount) labelled), \(validation.count) validation, \(dataset.test.count) test"
                ),
                ("teacher", "\(teacher) (\(teacherModel.architecture))"),
                ("student", architecture.arch),
                ("seeds", seeds),
                (
                    "grid",
                    "techniques \(techniques); T \(temperatures.values.map { "\($0)" }.joined(separator: ", ")); alpha \(alphas.values.map { "\($0)" }.joined(separator: ", "))"
                ),
                (
                    "selection",
                    "best mean validation accuracy over seeds; test accuracy reported, never used"
                ),
            ]
            let report = try Report.sweep(
                sweep, teacher: teacherModel, teacherLogits: teacherLogits, test: dataset.test,
                classNames: dataset.classNames ?? (0..<teacherModel.classes).map { "class \($0)" },
                facts: facts)
            try report.write(to: out + "/report.html")
            printError("report: \(out)/report.html")
        }
        if stopRequested {
            printError(
                "interrupted: finished runs are in \(out)/sweep.csv; the same command resumes")
        }
    }
}
