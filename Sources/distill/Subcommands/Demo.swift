import ArgumentParser
import DistillKit
import Foundation

/// `distill demo`: the main job of `make demo`.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show where distillation pays on Fashion-MNIST: a CNN teacher, and an MLP student with few labels trained on them alone versus distilled with the unlabelled rest.",
        discussion: """
        Trains a CNN teacher (cnn:32,64/fc:256, dropout 0.3, 2-pixel jitter) on every labelled training image, then \
        two 784-800-800-10 students that have labels for only 2,000 images: one on those labels \
        alone, one distilled (T 4, alpha 0.7) with the other training images as an unlabelled \
        transfer set. Prints test accuracy, errors, NLL, ECE and time for each, and writes the models \
        and summary.json to --out. A teacher already in --out with the same settings is reused.
        """)

    @Option(help: "Data directory (default: $DISTILL_DATA, else /usr/share/datasets/fashion-mnist).") var data: String?
    @Flag(help: "A shorter run (about 2 minutes on 2 cores).") var quick = false
    @Option(help: "Output directory.") var out: String = "distill-demo"
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        installInterruptHandler()
        var experiment = quick ? FewLabelExperiment.quick : FewLabelExperiment()
        experiment.seed = seed
        let dataset = try DataOptions.loadDataset(data)
        let (training, validation) = try dataset.training.splittingValidation(.automatic)
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw ValidationError("--out \(out): cannot create the directory (\(error.localizedDescription))")
        }
        say("data: \(dataset.directory): \(training.count) training, \(validation.count) validation, \(dataset.test.count) test images")

        let teacherPath = out + "/teacher.safetensors"
        var teacher: Model
        var teacherSeconds = 0.0
        var reused = false
        if let existing = try? Model.load(from: teacherPath), existing.metadata["demo_teacher"] == experiment.teacherKey {
            teacher = existing
            reused = true
            say("reusing the teacher in \(teacherPath) (same settings: \(experiment.teacherKey))")
        } else {
            say("training the teacher: \(experiment.teacherKey)")
            (teacher, teacherSeconds) = try experiment.teacher(training: training, validation: validation,
                                                             progress: ConsoleProgress(label: "teacher", quiet: quiet))
            try teacher.save(to: teacherPath)
        }
        var rows: [(String, String, Model, Double)] = [("teacher \(experiment.teacherArchitecture)", "teacher.safetensors", teacher, teacherSeconds)]
        say("training the students: \(experiment.studentArchitecture) with labels for \(experiment.labels) images, \(experiment.studentSteps) steps each")
        let students = try experiment.students(teacher: teacher, training: training, validation: validation) {
            ConsoleProgress(label: $0, quiet: quiet)
        }
        for (i, s) in students.enumerated() {
            let file = i == 0 ? "student-labels-only.safetensors" : "student-distilled.safetensors"
            try s.model.save(to: out + "/" + file)
            rows.append((s.name, file, s.model, s.seconds))
        }
        var table = ["model                                      parameters  test acc  errors     NLL     ECE   seconds"]
        var json: [String] = []
        for (name, file, model, seconds) in rows {
            let report = EvaluationReport(logits: try inferLogits(model: model, examples: dataset.test),
                                          labels: dataset.test.labels!, classes: model.classes)
            let time = name.hasPrefix("teacher") && reused ? "reused" : String(format: "%.0f", seconds)
            table.append(name.padding(toLength: 42, withPad: " ", startingAt: 0)
                         + String(format: "%11d %9.4f %7d %7.4f %7.4f ", model.parameterCount, report.accuracy, report.errors, report.nll, report.ece)
                         + time.leftPad(9))
            json.append("{\"name\": \"\(name)\", \"file\": \"\(file)\", \"parameters\": \(model.parameterCount), \"accuracy\": \(report.accuracy), \"errors\": \(report.errors), \"nll\": \(report.nll), \"ece\": \(report.ece), \"seconds\": \(name.hasPrefix("teacher") && reused ? "null" : "\(seconds)")}")
        }
        let summary = "{\"data\": \"\(dataset.directory)\", \"seed\": \(seed), \"quick\": \(quick), \"labels\": \(experiment.labels), \"temperature\": \(experiment.temperature), \"alpha\": \(experiment.alpha), \"models\": [\n  " + json.joined(separator: ",\n  ") + "\n]}\n"
        try AtomicFile.write(text: summary, to: out + "/summary.json")
        print(table.joined(separator: "\n"))
        print("")
        print("Test set of \(dataset.test.count) images, seed \(seed); choices were made on \(validation.count) validation images.")
        print("Models and summary.json written to \(out)/")
    }

    func say(_ line: String) { if !quiet { printError(line) } }
}
