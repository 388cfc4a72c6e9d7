import DistillKit
import DistillTestSupport
import XCTest

/// Runs the built `distill` binary.
struct Run {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// The `distill` executable built beside the test bundle.
var distillBinary: URL {
    let besideBundle = Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(
        "distill")
    return FileManager.default.fileExists(atPath: besideBundle.path)
        ? besideBundle
        : URL(fileURLWithPath: Bundle.main.bundlePath).appendingPathComponent("distill")
}

func distill(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
    let process = Process()
    process.executableURL = distillBinary
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}

/// A synthetic data set in the NPY layout: the class of a 2-D point is the ring it falls in
/// (3 classes), with 6 noise features.
func writeRings(to directory: String, training: Int = 3000, test: Int = 1000) throws {
    func points(_ n: Int, seed: UInt64) -> ([Float], [Int64]) {
        let (x, y) = ringsDataset(count: n, seed: seed)
        return (x, y.map(Int64.init))
    }
    let (trainX, trainY) = points(training, seed: 1)
    let (testX, testY) = points(test, seed: 2)
    try NPY.write(floats: trainX, shape: [training, 8], to: directory + "/train_x.npy")
    try NPY.write(int64: trainY, shape: [training], to: directory + "/train_y.npy")
    try NPY.write(floats: testX, shape: [test, 8], to: directory + "/test_x.npy")
    try NPY.write(int64: testY, shape: [test], to: directory + "/test_y.npy")
}

/// Trains the rings teacher (mlp:64,64, 20 epochs) on `data` into `out`, and checks it worked.
func trainRingsTeacher(
    data: String, out: String, seed: String = "0",
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let run = try distill([
        "train", "--data", data, "--arch", "mlp:64,64", "--epochs", "20", "--batch-size", "64",
        "--seed", seed, "--quiet", "--out", out,
    ])
    XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
}

/// A new directory with the rings data and a rings teacher at `dir/teacher.safetensors` trained
/// with `seed`; returns it and the flags `--data DIR --quiet --seed SEED` for the runs that follow.
func ringsWithTeacher(
    seed: String, prefix: String = "distill-cli", file: StaticString = #filePath,
    line: UInt = #line
) throws -> (dir: String, quiet: [String]) {
    let dir = try makeTemporaryDirectory(prefix)
    try writeRings(to: dir)
    try trainRingsTeacher(
        data: dir, out: dir + "/teacher.safetensors", seed: seed, file: file, line: line)
    return (dir, ["--data", dir, "--quiet", "--seed", seed])
}

/// The test accuracy of `model` on `data`, from `distill eval --json`.
func testAccuracy(model: String, data: String) throws -> Double {
    let run = try distill(["eval", "--model", model, "--data", data, "--json"])
    return (try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any])[
        "accuracy"] as! Double
}

final class ExplainCommandTests: XCTestCase {
    func testTableAndJSON() throws {
        let table = try distill([
            "explain", "--teacher-logits=2.9,0.1,0.23", "--student-logits=0.4,-1.3,2.2",
            "--temperature", "3", "--alpha", "0.7", "--label", "0",
        ])
        XCTAssertEqual(table.status, 0, table.stderr)
        // teacher at T = 3 (SPEC.md: 0.554)
        XCTAssertTrue(table.stdout.contains("0.5544"), table.stdout)
        let lossLine = table.stdout.split(separator: "\n").first { $0.hasPrefix("loss =") }
        let printed = lossLine.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
        assertClose(try XCTUnwrap(printed), 1.9267364321295877, rtol: 1e-6)  // the golden loss
        let json = try distill([
            "explain", "--teacher-logits=2.9,0.1,0.23", "--student-logits=0.4,-1.3,2.2",
            "--temperature", "3", "--label", "0", "--json",
        ])
        XCTAssertEqual(json.status, 0)
        let object =
            try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(
            Set(object.keys),
            ["teacher_probs", "student_probs", "kl", "soft_loss", "hard_loss", "loss", "gradient"])
        assertClose(object["loss"] as! Double, 1.9267364321295877, rtol: 1e-5)
        assertClose(
            (object["gradient"] as! [Double]),
            [-0.8031117549914056, -0.09866839764364808, 0.9017801526350535], rtol: 1e-4)
        // Without a label the hard term is null and alpha is 1, with a note in the table.
        let noLabel = try distill([
            "explain", "--teacher-logits=2.9,0.1,0.23", "--student-logits=0.4,-1.3,2.2", "--json",
        ])
        let noLabelObject =
            try JSONSerialization.jsonObject(with: Data(noLabel.stdout.utf8)) as! [String: Any]
        XCTAssertTrue(noLabelObject["hard_loss"] is NSNull, noLabel.stdout)
        let note = try distill([
            "explain", "--teacher-logits=2.9,0.1,0.23", "--student-logits=0.4,-1.3,2.2",
        ])
        XCTAssertTrue(note.stdout.contains("alpha = 1"), note.stdout)
    }

    func testBadInputIsOneLineAndStatus2() throws {
        let cases: [[String]] = [
            ["explain", "--teacher-logits=1,2", "--student-logits=1,2,3"],
            ["explain", "--teacher-logits=1,x,2", "--student-logits=1,2,3"],
            ["explain", "--teacher-logits=1,2,3", "--student-logits=1,2,3", "--temperature", "0"],
            ["explain", "--teacher-logits=1,2,3", "--student-logits=1,2,3", "--alpha", "1.5"],
            ["explain", "--teacher-logits=1,2,3", "--student-logits=1,2,3", "--label", "3"],
            ["explain", "--student-logits=1,2,3"],
        ]
        for arguments in cases {
            let run = try distill(arguments)
            XCTAssertEqual(run.status, 2, "\(arguments)")
            XCTAssertEqual(
                run.stderr.split(separator: "\n").count, 1, "\(arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.hasPrefix("distill: "), run.stderr)
        }
    }
}

final class PipelineCommandTests: XCTestCase {
    /// train -> logits -> eval -> predict -> inspect on a synthetic data set, and the same seed
    /// giving the same model file.
    func testTrainEvaluatePredict() throws {
        let dir = try makeTemporaryDirectory("distill-cli")
        try writeRings(to: dir)
        let common = [
            "--data", dir, "--arch", "mlp:32,32", "--epochs", "15", "--batch-size", "64", "--seed",
            "3", "--quiet",
        ]
        let run = try distill(["train"] + common + ["--out", dir + "/a.safetensors"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(
            try distill(["train"] + common + ["--out", dir + "/b.safetensors"]).status, 0)
        XCTAssertEqual(
            try readFileBytes(dir + "/a.safetensors"), try readFileBytes(dir + "/b.safetensors"),
            "same seed, same file")
        let log = try String(contentsOfFile: dir + "/a.metrics.jsonl", encoding: .utf8).split(
            separator: "\n")
        XCTAssertEqual(log.count, 15)
        XCTAssertTrue(log[0].contains("\"validation_accuracy\""))

        let logits = try distill([
            "logits", "--model", dir + "/a.safetensors", "--data", dir, "--out",
            dir + "/logits.npy",
        ])
        XCTAssertEqual(logits.status, 0, logits.stderr)
        XCTAssertEqual(try NPY.read(dir + "/logits.npy").shape, [3000, 3])

        let eval = try distill(["eval", "--model", dir + "/a.safetensors", "--data", dir, "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let report =
            try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        for key in ["accuracy", "errors", "nll", "ece", "per_class", "confusion"] {
            XCTAssertNotNil(report[key], key)
        }
        let accuracy = report["accuracy"] as! Double
        XCTAssertGreaterThan(accuracy, 0.9)

        // predict agrees with eval on the same examples.
        let testX = try NPY.read(dir + "/test_x.npy")
        try NPY.write(floats: testX.floats(), shape: testX.shape, to: dir + "/inputs.npy")
        let predict = try distill([
            "predict", "--model", dir + "/a.safetensors", "--input", dir + "/inputs.npy", "--top",
            "2",
        ])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let lines = predict.stdout.split(separator: "\n")
        XCTAssertEqual(
            lines[0], "index,predicted,probability,class_1,probability_1,class_2,probability_2")
        XCTAssertEqual(lines.count, 1001)
        let labels = try NPY.read(dir + "/test_y.npy").integers()
        let agree = lines.dropFirst().enumerated().filter { i, line in
            Int64(line.split(separator: ",")[1])! == labels[i]
        }.count
        XCTAssertEqual(Double(agree) / 1000, accuracy, accuracy: 1e-9)

        let inspect = try distill(["inspect", dir + "/a.safetensors"])
        XCTAssertTrue(inspect.stdout.contains("mlp:32,32"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("seed:"), inspect.stdout)
    }

    /// With labels for 30 examples, a student distilled from a teacher (trained on all labels)
    /// with the unlabelled rest as transfer set beats the same student on the 30 labels alone.
    func testDistilledStudentBeatsLabelOnlyStudent() throws {
        let (dir, quiet) = try ringsWithTeacher(seed: "5")
        let baseline = try distill(
            [
                "train", "--arch", "mlp:16", "--steps", "600", "--labelled", "30", "--batch-size",
                "32", "--out", dir + "/base.safetensors",
            ] + quiet)
        XCTAssertEqual(baseline.status, 0, baseline.stderr)
        let student = try distill(
            [
                "distill", "--teacher", dir + "/teacher.safetensors", "--arch", "mlp:16", "--steps",
                "600",
                "--labelled", "30", "--temperature", "4", "--alpha", "0.7", "--batch-size", "32",
                "--out", dir + "/student.safetensors",
            ] + quiet)
        XCTAssertEqual(student.status, 0, student.stderr)
        func accuracy(_ model: String) throws -> Double {
            try testAccuracy(model: model, data: dir)
        }
        let (t, b, s) = (
            try accuracy(dir + "/teacher.safetensors"), try accuracy(dir + "/base.safetensors"),
            try accuracy(dir + "/student.safetensors")
        )
        XCTAssertGreaterThan(t, 0.95)
        XCTAssertGreaterThan(s, b + 0.05, "distilled \(s) vs labels only \(b)")
        // Cached logits from `distill logits` train the same student as the teacher model does.
        XCTAssertEqual(
            try distill([
                "logits", "--model", dir + "/teacher.safetensors", "--data", dir, "--out",
                dir + "/t.npy",
            ]).status, 0)
        let fromLogits = try distill(
            [
                "distill", "--teacher-logits", dir + "/t.npy", "--arch", "mlp:16", "--steps", "600",
                "--labelled", "30", "--temperature", "4", "--alpha", "0.7", "--batch-size", "32",
                "--out", dir + "/student2.safetensors",
            ] + quiet)
        XCTAssertEqual(fromLogits.status, 0, fromLogits.stderr)
        XCTAssertEqual(try accuracy(dir + "/student2.safetensors"), s, accuracy: 1e-9)

        // The same logits as a directory of shards (float32, then float64 holding the same
        // values) train the same student, weight for weight.
        let logits = try NPY.read(dir + "/t.npy")
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        let values = logits.floats()
        try FileManager.default.createDirectory(
            atPath: dir + "/shards", withIntermediateDirectories: false)
        try NPY.write(
            floats: Array(values[0..<(1000 * classes)]), shape: [1000, classes],
            to: dir + "/shards/0.npy")
        try Data(
            npyBytes(
                descr: "<f8", shape: [rows - 1000, classes],
                data: elementBytes(values[(1000 * classes)...].map(Double.init), size: 8))
        )
        .write(to: URL(fileURLWithPath: dir + "/shards/1.npy"))
        let fromShards = try distill(
            [
                "distill", "--teacher-logits", dir + "/shards", "--arch", "mlp:16", "--steps",
                "600",
                "--labelled", "30", "--temperature", "4", "--alpha", "0.7", "--batch-size", "32",
                "--out", dir + "/student3.safetensors",
            ] + quiet)
        XCTAssertEqual(fromShards.status, 0, fromShards.stderr)
        let (a, b3) = (
            try Model.load(from: dir + "/student2.safetensors"),
            try Model.load(from: dir + "/student3.safetensors")
        )
        for (p, q) in zip(a.parameters, b3.parameters) {
            XCTAssertEqual(Array(p.value.buffer), Array(q.value.buffer))
        }
        // Shards that do not cover the training file are refused, naming the directory.
        try FileManager.default.removeItem(atPath: dir + "/shards/1.npy")
        let short = try distill(
            [
                "distill", "--teacher-logits", dir + "/shards", "--arch", "mlp:16", "--steps", "10",
                "--out", dir + "/student4.safetensors",
            ] + quiet)
        XCTAssertEqual(short.status, 2)
        XCTAssertTrue(
            short.stderr.contains("shards") && short.stderr.contains("[1000, 3]"), short.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/student4.safetensors"))
    }

    /// Bad flags and files: one line on stderr, status 2, no output file.
    func testBadFlagsFailCleanly() throws {
        let dir = try makeTemporaryDirectory("distill-cli")
        try writeRings(to: dir, training: 300, test: 100)
        let out = dir + "/out.safetensors"
        let cases: [([String], String)] = [
            (["train", "--data", dir, "--arch", "rnn:3", "--out", out], "unknown architecture"),
            (
                ["train", "--data", dir, "--arch", "mlp:8", "--epochs", "0", "--out", out],
                "--epochs"
            ),
            (
                ["train", "--data", dir, "--arch", "mlp:8", "--batch-size", "0", "--out", out],
                "--batch-size"
            ),
            (
                [
                    "train", "--data", dir, "--arch", "mlp:8", "--optimizer", "rmsprop", "--out",
                    out,
                ], "rmsprop"
            ),
            (
                [
                    "train", "--data", dir, "--arch", "mlp:8", "--out",
                    dir + "/missing/out.safetensors",
                ], "does not exist"
            ),
            (["train", "--data", dir + "/nothing", "--arch", "mlp:8", "--out", out], "no dataset"),
            (["train", "--data", dir, "--arch", "cnn:4", "--out", out], "image input"),
            (
                [
                    "distill", "--data", dir, "--arch", "mlp:8", "--teacher",
                    dir + "/none.safetensors", "--out", out,
                ], "no such file"
            ),
            (
                [
                    "distill", "--data", dir, "--arch", "mlp:8", "--teacher-logits",
                    dir + "/train_x.npy", "--temperature", "0", "--out", out,
                ], "--temperature"
            ),
            (
                [
                    "distill", "--data", dir, "--arch", "mlp:8", "--teacher-logits",
                    dir + "/train_x.npy", "--alpha", "2", "--out", out,
                ], "--alpha"
            ),
            (
                [
                    "distill", "--data", dir, "--arch", "mlp:8", "--teacher-logits",
                    dir + "/train_x.npy", "--out", out,
                ], "teacher logits are [300, 8]"
            ),
            (
                ["eval", "--model", dir + "/train_x.npy", "--data", dir],
                "not a valid safetensors file"
            ),
            (
                ["export", "--model", dir + "/train_x.npy", "--out", out],
                "not a valid safetensors file"
            ),
            (
                [
                    "distill", "--data", dir, "--arch", "mlp:8", "--teacher-top-k", dir,
                    "--objective", "mse", "--out", out,
                ], "--teacher-top-k"
            ),
            (
                [
                    "distill", "--data", dir, "--arch", "mlp:8", "--teacher-top-k", dir, "--out",
                    out,
                ], "values"
            ),
            (
                ["export", "--model", dir + "/train_x.npy", "--format", "tflite", "--out", out],
                "tflite"
            ),
            (
                [
                    "import-torch", "--state-dict", dir + "/none.safetensors", "--arch", "mlp",
                    "--out", out,
                ], "no such file"
            ),
            (
                [
                    "import-torch", "--state-dict", dir + "/train_x.npy", "--arch", "mlp",
                    "--input-shape", "1,x", "--out", out,
                ], "--input-shape"
            ),
            (
                [
                    "import-torch", "--state-dict", dir + "/train_x.npy", "--arch", "mlp", "--out",
                    out,
                ], "not a valid safetensors file"
            ),
        ]
        for (arguments, expected) in cases {
            let run = try distill(arguments)
            XCTAssertEqual(run.status, 2, "\(arguments): \(run.stderr)")
            XCTAssertTrue(
                run.stderr.contains(expected),
                "\(arguments): '\(run.stderr)' should mention '\(expected)'")
            XCTAssertEqual(
                run.stderr.split(separator: "\n").count, 1, "\(arguments): \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(arguments) left \(out)")
        }
    }
}

final class UnlabelledDistillationTests: XCTestCase {
    /// A data set without training labels: train refuses it, distill learns from soft targets alone.
    func testSoftOnlyOnAnUnlabelledDataSet() throws {
        let labelled = try makeTemporaryDirectory("distill-cli")
        let unlabelled = try makeTemporaryDirectory("distill-cli")
        try writeRings(to: labelled)
        try writeRings(to: unlabelled)
        try FileManager.default.removeItem(atPath: unlabelled + "/train_y.npy")
        try trainRingsTeacher(data: labelled, out: labelled + "/teacher.safetensors")
        let refused = try distill([
            "train", "--data", unlabelled, "--arch", "mlp:16", "--out",
            unlabelled + "/x.safetensors",
        ])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("no training example has a label"), refused.stderr)
        let student = try distill([
            "distill", "--data", unlabelled, "--teacher", labelled + "/teacher.safetensors",
            "--arch", "mlp:16",
            "--epochs", "20", "--batch-size", "64", "--alpha", "1", "--quiet", "--out",
            unlabelled + "/s.safetensors",
        ])
        XCTAssertEqual(student.status, 0, student.stderr)
        XCTAssertGreaterThan(
            try testAccuracy(model: unlabelled + "/s.safetensors", data: unlabelled), 0.9)
    }
}

final class OmitClassTests: XCTestCase {
    /// `--omit-class K` removes class K's examples from the transfer set (labelled or not) and
    /// records it; the student still scores on class K from the soft targets of other classes.
    func testOmittedClassLeavesTheTransferSet() throws {
        let (dir, quiet) = try ringsWithTeacher(seed: "2")
        let run = try distill(
            [
                "distill", "--teacher", dir + "/teacher.safetensors", "--arch", "mlp:32",
                "--epochs", "20",
                "--batch-size", "64", "--omit-class", "1", "--out", dir + "/s.safetensors",
            ] + quiet)
        XCTAssertEqual(run.status, 0, run.stderr)
        let inspect = try distill(["inspect", dir + "/s.safetensors"]).stdout
        XCTAssertTrue(
            inspect.contains("omitted_class:  1") || inspect.contains("omitted_class: 1"), inspect)
        let labels = try NPY.read(dir + "/train_y.npy").integers()
        // 300 validation examples held out of 3,000
        let kept = labels[0..<2700].filter { $0 != 1 }.count
        XCTAssertTrue(inspect.contains("training_examples: \(kept)"), inspect)
        let eval = try distill(["eval", "--model", dir + "/s.safetensors", "--data", dir, "--json"])
        let report =
            try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        let perClass = report["per_class"] as! [[String: Any]]
        XCTAssertGreaterThan(perClass[1]["recall"] as! Double, 0, "class 1 is never predicted")
    }
}

final class DivergenceTests: XCTestCase {
    /// A learning rate that blows the weights up stops the run with a message naming the epoch and
    /// batch and what to try; the model file holds the last good (best) weights, never NaN.
    func testDivergedRunKeepsTheLastGoodWeights() throws {
        let dir = try makeTemporaryDirectory("distill-cli")
        try writeRings(to: dir, training: 600, test: 100)
        let run = try distill([
            "train", "--data", dir, "--arch", "mlp:16", "--epochs", "5", "--lr", "1e30", "--quiet",
            "--out", dir + "/m.safetensors",
        ])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("training diverged at epoch"), run.stderr)
        XCTAssertTrue(run.stderr.contains("lower --lr"), run.stderr)
        let model = try Model.load(from: dir + "/m.safetensors")
        XCTAssertTrue(model.parameters.allSatisfy { $0.value.values.allSatisfy(\.isFinite) })
    }
}

final class TeacherMismatchTests: XCTestCase {
    /// A teacher whose class count or input shape does not fit the data is refused before training.
    func testTeacherThatDoesNotFitTheData() throws {
        let rings = try makeTemporaryDirectory("distill-cli")
        let other = try makeTemporaryDirectory("distill-cli")
        try writeRings(to: rings, training: 300, test: 100)
        XCTAssertEqual(
            try distill([
                "train", "--data", rings, "--arch", "mlp:4", "--epochs", "1", "--quiet",
                "--out", rings + "/teacher.safetensors",
            ]).status, 0)
        // Five features instead of eight, and four classes instead of three: the labels are checked
        // against the teacher's classes first.
        try NPY.write(
            floats: [Float](repeating: 0.5, count: 40 * 5), shape: [40, 5],
            to: other + "/train_x.npy")
        try NPY.write(
            int64: (0..<40).map { Int64($0 % 4) }, shape: [40], to: other + "/train_y.npy")
        try NPY.write(
            floats: [Float](repeating: 0.5, count: 10 * 5), shape: [10, 5],
            to: other + "/test_x.npy")
        try NPY.write(int64: (0..<10).map { Int64($0 % 4) }, shape: [10], to: other + "/test_y.npy")
        let out = other + "/student.safetensors"
        let arguments = [
            "distill", "--data", other, "--teacher", rings + "/teacher.safetensors", "--arch",
            "mlp:4", "--out", out,
        ]
        let run = try distill(arguments)
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(
            run.stderr.contains("train_y.npy: label 3 at row 3 is outside [0, 3)"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        // Three classes, five features.
        try NPY.write(
            int64: (0..<40).map { Int64($0 % 3) }, shape: [40], to: other + "/train_y.npy")
        try NPY.write(int64: (0..<10).map { Int64($0 % 3) }, shape: [10], to: other + "/test_y.npy")
        let shape = try distill(arguments)
        XCTAssertEqual(shape.status, 2)
        XCTAssertTrue(shape.stderr.contains("a teacher takes [8] with 3 classes"), shape.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}

final class SweepTechniqueTests: XCTestCase {
    /// A cosine temperature schedule with logit standardisation distils a working student and
    /// records both in the model file.
    func testScheduleAndStandardization() throws {
        let (dir, quiet) = try ringsWithTeacher(seed: "6")
        let run = try distill(
            [
                "distill", "--teacher", dir + "/teacher.safetensors", "--arch", "mlp:16",
                "--epochs", "20",
                "--batch-size", "64", "--temperature", "8", "--temperature-schedule", "cosine",
                "--final-temperature", "2", "--logit-standardization", "--out",
                dir + "/s.safetensors",
            ] + quiet)
        XCTAssertEqual(run.status, 0, run.stderr)
        let inspect = try distill(["inspect", dir + "/s.safetensors"]).stdout
        XCTAssertTrue(inspect.contains("cosine 8.0 -> 2.0"), inspect)
        XCTAssertTrue(inspect.contains("logit_standardization"), inspect)
        XCTAssertGreaterThan(try testAccuracy(model: dir + "/s.safetensors", data: dir), 0.9)
    }
}

extension SweepTechniqueTests {
    /// DKD and DIST distil working students from the command line.
    func testDecoupledObjectives() throws {
        let (dir, quiet) = try ringsWithTeacher(seed: "7")
        for objective in ["dkd", "dist"] {
            let out = dir + "/\(objective).safetensors"
            let run = try distill(
                [
                    "distill", "--teacher", dir + "/teacher.safetensors", "--arch", "mlp:16",
                    "--epochs", "20", "--batch-size", "64", "--temperature", "4", "--objective",
                    objective, "--out", out,
                ] + quiet)
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertGreaterThan(try testAccuracy(model: out, data: dir), 0.9, objective)
        }
    }
}

final class SweepCommandTests: XCTestCase {
    /// A sweep writes its runs and choice; started again with more seeds it runs only the new ones.
    func testSweepChoosesOnValidationAndResumes() throws {
        let dir = try makeTemporaryDirectory("distill-sweep")
        try writeRings(to: dir, training: 1500, test: 500)
        try trainRingsTeacher(data: dir, out: dir + "/teacher.safetensors")
        let common = [
            "sweep", "--data", dir, "--teacher", dir + "/teacher.safetensors", "--arch", "mlp:16",
            "--epochs", "4",
            "--batch-size", "64", "--labelled", "60", "--temperatures", "2,4", "--alphas", "0.7",
            "--techniques", "fixed,cosine", "--out", dir + "/sweep",
        ]
        let first = try distill(common + ["--seeds", "1"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let firstRuns = first.stdout.split(separator: "\n").filter {
            $0.hasPrefix("baseline") || $0.hasPrefix("distilled")
        }
        XCTAssertEqual(firstRuns.count, 5)  // baseline + 2 techniques x 2 temperatures
        XCTAssertTrue(first.stderr.contains("report: "), first.stderr)
        let second = try distill(common + ["--seeds", "1,2"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stderr.contains("5 runs already finished"), second.stderr)
        let secondRuns = second.stdout.split(separator: "\n").filter {
            $0.hasPrefix("baseline") || $0.hasPrefix("distilled")
        }
        XCTAssertEqual(secondRuns.count, 5)  // only seed 2
        XCTAssertTrue(secondRuns.allSatisfy { $0.contains("     2  ") }, "\(secondRuns)")
        let csv = try String(contentsOfFile: dir + "/sweep/sweep.csv", encoding: .utf8).split(
            separator: "\n")
        XCTAssertEqual(csv.count, 11)
        let json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: dir + "/sweep/sweep.json")))
            as! [String: Any]
        let chosen = try XCTUnwrap(json["chosen"] as? [String: Any])
        XCTAssertEqual(chosen["seeds"] as? Int, 2)
        XCTAssertGreaterThan(
            chosen["test_accuracy_mean"] as! Double,
            chosen["baseline_test_accuracy_mean"] as! Double)
        XCTAssertTrue(second.stdout.contains("chosen on validation"), second.stdout)

        // The report: well-formed, and every chart drawn from the runs.
        let page = try ChartCollector.read(
            String(contentsOfFile: dir + "/sweep/report.html", encoding: .utf8))
        let lines = page.charts.filter { $0.kind == "line" }
        // fixed and cosine against T, the loss terms, validation accuracy
        XCTAssertEqual(lines.count, 4)
        // One point per temperature, at the mean validation accuracy of the two seeds in sweep.csv.
        let fields = csv.dropFirst().map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        for (chart, technique) in zip(lines.prefix(2), ["fixed", "cosine"]) {
            let points = chart.elements.filter {
                $0.name == "circle" && $0.attributes["data-y"] != nil
            }
            XCTAssertEqual(points.compactMap { $0.attributes["data-x"] }, ["2.0", "4.0"])
            for point in points {
                let runs = fields.filter {
                    $0[1] == technique && Double($0[2]) == Double(point.attributes["data-x"]!)
                }
                XCTAssertEqual(runs.count, 2)
                XCTAssertEqual(
                    Double(point.attributes["data-y"]!)!,
                    runs.map { Double($0[5])! }.reduce(0, +) / 2, accuracy: 1e-12)
            }
        }
        XCTAssertEqual(
            lines.prefix(2).filter { c in
                c.elements.contains { $0.attributes["data-marked"] == "chosen" }
            }.count, 1)
        XCTAssertTrue(
            lines[3].elements.contains {
                $0.attributes["data-series"] == "baseline, seed 1"
                    && $0.attributes["data-points"] == "4"
            })
        // teacher, baseline, chosen
        XCTAssertEqual(page.charts.filter { $0.kind == "confusion" }.count, 3)
        // the rings have three classes
        XCTAssertEqual(page.charts.filter { $0.kind == "probabilities" }.count, 3)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: dir + "/sweep/runs/baseline-seed2.safetensors"))

        // Runs that diverge are recorded, marked, and the sweep goes on to the end and its report.
        let wild = try distill(
            common.map { $0 == dir + "/sweep" ? dir + "/wild" : $0 } + [
                "--seeds", "1", "--lr", "1e30",
            ])
        XCTAssertEqual(wild.status, 0, wild.stderr)
        let wildCSV = try String(contentsOfFile: dir + "/wild/sweep.csv", encoding: .utf8).split(
            separator: "\n")
        XCTAssertEqual(wildCSV.count, 6)
        XCTAssertTrue(wildCSV.dropFirst().allSatisfy { $0.hasSuffix(",diverged") }, "\(wildCSV)")
        XCTAssertTrue(wild.stderr.contains("recorded as diverged"), wild.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/wild/report.html"))
    }
}
