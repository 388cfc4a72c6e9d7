import ArgumentParser
import DistillKit
import Foundation

/// `distill demo`: the main job of `make demo`.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Show where distillation pays on Fashion-MNIST: a CNN teacher, and an MLP student with few labels trained on them alone versus distilled with the unlabelled rest.",
        discussion: """
            Trains a CNN teacher (cnn:32,64/fc:256, dropout 0.3, 1-pixel jitter) on every labelled training image, then \
            784-800-800-10 students that have labels for only 2,000 images: one on those labels \
            alone, and one distilled (alpha 0.7, the hard term a mean over all rows of a batch) with the \
            other training images as an unlabelled transfer set at each of T = 1, 2 and 4 (--quick: 4 \
            only), the one with the best validation accuracy kept. The teacher trains for 10 epochs of \
            Adam (lr 0.002) and each student for 10,000 steps of SGD (--quick: 2 epochs and 1,500 \
            steps; --patient: 30 epochs of SGD at lr 0.05 with 2-pixel jitter and 20,000 steps). \
            Prints validation and test accuracy, errors, NLL, ECE and time for each, and writes the \
            models, summary.json and report.html (accuracy against T, training curves, the teacher's \
            softened outputs, confusion matrices) to --out. A teacher already in --out with the same \
            settings is reused.
            """)

    @Option(
        help: "Data directory (default: $DISTILL_DATA, else /usr/share/datasets/fashion-mnist).")
    var data: String?
    @Flag(
        help:
            "A shorter run (under 2 minutes on 2 cores): teacher 2 epochs, students 1,500 steps, T = 4 only."
    ) var quick = false
    @Flag(
        help:
            "The README ablation's best recipe (about 17 minutes on 2 cores): teacher 30 epochs of SGD, students 20,000 steps."
    ) var patient = false
    @Option(help: "Output directory.") var out: String = "distill-demo"
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Flag(help: "No progress output.") var quiet = false

    func validate() throws {
        if quick && patient { throw ValidationError("give --quick or --patient, not both") }
    }

    func run() throws {
        installInterruptHandler()
        var experiment =
            quick ? FewLabelExperiment.quick : patient ? .patient : FewLabelExperiment()
        experiment.seed = seed
        let dataset = try DataDirectory.load(
            resolving: data, environment: ProcessInfo.processInfo.environment)
        let (training, validation) = try dataset.training.splittingValidation(.automatic)
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw ValidationError(
                "--out \(out): cannot create the directory (\(error.localizedDescription))")
        }
        say(
            "data: \(dataset.directory): \(training.count) training, \(validation.count) validation, \(dataset.test.count) test images"
        )

        let teacherPath = out + "/teacher.safetensors"
        var teacher: Model
        var teacherSeconds = 0.0
        var reused = false
        if let existing = try? Model.load(from: teacherPath),
            existing.metadata["demo_teacher"] == experiment.teacherKey
        {
            teacher = existing
            reused = true
            say("reusing the teacher in \(teacherPath) (same settings: \(experiment.teacherKey))")
        } else {
            say("training the teacher: \(experiment.teacherKey)")
            (teacher, teacherSeconds) = try experiment.teacher(
                training: training, validation: validation,
                progress: ConsoleProgress(label: "teacher", quiet: quiet))
            try teacher.save(to: teacherPath)
        }
        say(
            "training the students: \(experiment.studentArchitecture) with labels for \(experiment.labels) images, \(experiment.studentSteps) steps each; distilled at T \(experiment.temperatures.map { "\($0)" }.joined(separator: ", "))"
        )
        let students = try experiment.students(
            teacher: teacher, training: training, validation: validation
        ) {
            ConsoleProgress(label: $0, quiet: quiet)
        }
        guard let baseline = students.first, let chosen = FewLabelExperiment.chosen(students) else {
            return
        }
        try baseline.model.save(to: out + "/student-labels-only.safetensors")
        try chosen.model.save(to: out + "/student-distilled.safetensors")

        var table = [
            "model                                      parameters  val acc  test acc  errors     NLL     ECE   seconds"
        ]
        var models: [DemoSummary.Model] = []
        var scored: [String: Report.ScoredModel] = [:]  // by file: the models the report shows
        var teacherTestLogits: [Float] = []
        let rows:
            [(name: String, file: String?, model: Model, validation: Double?, seconds: Double?)] =
                [
                    (
                        "teacher \(experiment.teacherArchitecture)", "teacher.safetensors", teacher,
                        teacher.metadata["validation_accuracy"].flatMap(Double.init),
                        reused ? nil : teacherSeconds
                    )
                ]
                + students.map { s in
                    let file =
                        s.temperature == nil
                        ? "student-labels-only.safetensors"
                        : s.name == chosen.name ? "student-distilled.safetensors" : nil
                    return (
                        s.name + (s.name == chosen.name ? " *" : ""), file, s.model,
                        s.summary.bestValidationAccuracy, s.summary.seconds
                    )
                }
        for row in rows {
            let logits = try inferLogits(model: row.model, examples: dataset.test)
            if row.model === teacher { teacherTestLogits = logits }
            let report = EvaluationReport(
                logits: logits, labels: dataset.test.labels!, classes: row.model.classes)
            if let file = row.file {
                scored[file] = Report.ScoredModel(
                    name: row.name.replacingOccurrences(of: " *", with: ""), evaluation: report)
            }
            table.append(
                row.name.padding(toLength: 42, withPad: " ", startingAt: 0)
                    + String(
                        format: "%11d %8@ %9.4f %7d %7.4f %7.4f ", row.model.parameterCount,
                        row.validation.map { String(format: "%.4f", $0) } ?? "-", report.accuracy,
                        report.errors, report.nll, report.ece)
                    + (row.seconds.map { String(format: "%.0f", $0) } ?? "reused").leftPadded(9))
            models.append(
                .init(
                    name: row.name, file: row.file, parameters: row.model.parameterCount,
                    validationAccuracy: row.validation,
                    accuracy: report.accuracy, errors: report.errors, nll: finite(report.nll),
                    ece: finite(report.ece),
                    seconds: row.seconds))
        }
        let summary =
            try jsonText(
                DemoSummary(
                    data: dataset.directory, seed: seed, quick: quick, patient: patient,
                    labels: experiment.labels,
                    temperatures: experiment.temperatures, chosenTemperature: chosen.temperature!,
                    alpha: experiment.alpha, models: models), pretty: true) + "\n"
        try AtomicFile.write(text: summary, to: out + "/summary.json")
        try Report.fewLabelDemo(
            experiment, students: students, chosen: chosen, teacherTestLogits: teacherTestLogits,
            scored: [
                "teacher.safetensors", "student-labels-only.safetensors",
                "student-distilled.safetensors",
            ].map { scored[$0]! },
            test: dataset.test, classNames: dataset.classNames, training: training.count,
            validation: validation.count,
            teacherValidationAccuracy: teacher.metadata["validation_accuracy"].flatMap(Double.init)
        )
        .write(to: out + "/report.html")
        print(table.joined(separator: "\n"))
        print("")
        print(
            "* chosen on validation accuracy. Test set of \(dataset.test.count) images, seed \(seed); choices were made on \(validation.count) validation images."
        )
        print("Models, summary.json and report.html written to \(out)/")
    }

    func say(_ line: String) { if !quiet { printError(line) } }
}

/// What `summary.json` holds: the run's settings and every model's test figures.
struct DemoSummary: Encodable {
    struct Model: Encodable {
        let name: String
        @NullWhenNil var file: String?
        let parameters: Int
        @NullWhenNil var validationAccuracy: Double?
        let accuracy: Double, errors: Int
        @NullWhenNil var nll: Double?
        @NullWhenNil var ece: Double?
        @NullWhenNil var seconds: Double?
    }
    let data: String, seed: UInt64, quick: Bool, patient: Bool, labels: Int, temperatures: [Float],
        chosenTemperature: Float, alpha: Float
    let models: [Model]
}
