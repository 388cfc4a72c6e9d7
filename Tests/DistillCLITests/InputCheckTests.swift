import DistillKit
import DistillTestSupport
import XCTest

/// Inputs that set a size or feed the loss are checked before any work: a one-line error naming
/// the file (and row) or flag, exit status 2, and no output file.
final class InputCheckTests: XCTestCase {
    /// Asserts a refused run: status 2, one line containing each of `expected`, no `out`.
    func assertRefused(
        _ arguments: [String], out: String, mentions expected: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let run = try distill(arguments)
        XCTAssertEqual(run.status, 2, run.stderr, file: file, line: line)
        XCTAssertEqual(
            run.stderr.split(separator: "\n").count, 1, run.stderr, file: file, line: line)
        for text in expected {
            XCTAssertTrue(
                run.stderr.contains(text), "'\(run.stderr)' should mention '\(text)'", file: file,
                line: line)
        }
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: out), "left \(out)", file: file, line: line)
    }

    /// Rings data whose training labels are `labels` where given (row -> label).
    func ringsWithLabels(_ labels: [Int: Int64]) throws -> String {
        let dir = try makeTemporaryDirectory("distill-inputs")
        try writeRings(to: dir, training: 300, test: 100)
        var y = try NPY.read(dir + "/train_y.npy").integers()
        for (row, label) in labels { y[row] = label }
        try NPY.write(int64: y, shape: [y.count], to: dir + "/train_y.npy")
        return dir
    }

    /// A one-character output path (it used to trap inside Foundation's path handling).
    func testAOneCharacterOutputPathWorks() throws {
        let dir = try ringsWithLabels([:])
        let process = Process()
        process.executableURL = distillBinary
        process.arguments = [
            "train", "--data", dir, "--arch", "mlp:4", "--epochs", "1", "--quiet", "--out", "m",
        ]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertNoThrow(try Model.load(from: dir + "/m"))
    }

    func testAFarOutLabelIsRefusedBeforeTraining() throws {
        let dir = try ringsWithLabels([17: 1_000_000])
        let out = dir + "/m.safetensors"
        try assertRefused(
            ["train", "--data", dir, "--arch", "mlp:4", "--out", out], out: out,
            mentions: ["train_y.npy: label 1000000 at row 17 implies 1000001 classes", "--classes"])
        // Against a teacher's classes, the label is outside them.
        let teacherDir = try ringsWithLabels([:])
        try trainRingsTeacher(data: teacherDir, out: teacherDir + "/teacher.safetensors")
        try assertRefused(
            [
                "distill", "--data", dir, "--teacher", teacherDir + "/teacher.safetensors",
                "--arch", "mlp:4",
                "--out", out,
            ], out: out, mentions: ["train_y.npy: label 1000000 at row 17 is outside [0, 3)"])
    }

    func testClassesDeclaresUnusedClassesAndIsCheckedAgainstTheLabels() throws {
        let dir = try ringsWithLabels([5: 40])  // labels 0, 1, 2 and one 40: 41 classes, 4 in use
        let out = dir + "/m.safetensors"
        try assertRefused(
            ["train", "--data", dir, "--arch", "mlp:4", "--out", out], out: out,
            mentions: ["label 40 at row 5 implies 41 classes"])
        try assertRefused(
            ["train", "--data", dir, "--arch", "mlp:4", "--classes", "5", "--out", out], out: out,
            mentions: ["train_y.npy: label 40 at row 5 is outside [0, 5)"])
        let run = try distill([
            "train", "--data", dir, "--arch", "mlp:4", "--classes", "41", "--epochs", "1",
            "--quiet",
            "--out", out,
        ])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try Model.load(from: out).classes, 41)
    }

    func testNonFiniteTeacherLogitsAreRefused() throws {
        let (dir, quiet) = try ringsWithTeacher(seed: "0", prefix: "distill-inputs")
        let out = dir + "/student.safetensors"
        XCTAssertEqual(
            try distill([
                "logits", "--model", dir + "/teacher.safetensors", "--data", dir,
                "--out", dir + "/logits.npy",
            ]).status, 0)
        var logits = try NPY.read(dir + "/logits.npy").floats()
        logits[250 * 3 + 1] = .nan
        try NPY.write(floats: logits, shape: [3000, 3], to: dir + "/nan.npy")
        try assertRefused(
            ["distill", "--teacher-logits", dir + "/nan.npy", "--arch", "mlp:4", "--out", out]
                + quiet,
            out: out, mentions: ["nan.npy: teacher logits: row 250, column 1 holds nan"])
        // Top-k values: an infinity.
        try FileManager.default.createDirectory(
            atPath: dir + "/topk", withIntermediateDirectories: false)
        var values = (0..<3000).flatMap { r in [logits[r * 3], logits[r * 3 + 2]] }
        values[2 * 40 + 1] = .infinity
        try NPY.write(floats: values, shape: [3000, 2], to: dir + "/topk/values.npy")
        try NPY.write(
            int64: (0..<3000).flatMap { _ in [Int64(0), 2] }, shape: [3000, 2],
            to: dir + "/topk/indices.npy")
        try assertRefused(
            [
                "distill", "--teacher-top-k", dir + "/topk", "--top-k-mass", "renormalise",
                "--arch", "mlp:4", "--out", out,
            ] + quiet,
            out: out, mentions: ["topk: top-k values: row 40, column 1 holds inf"])
        // Logits where the rest bucket (the default) needs log-probabilities: row 41 sums above 1.
        var logP = (0..<6000).map { _ in Float(-1) }
        (logP[2 * 41], logP[2 * 41 + 1]) = (0.5, 0.2)
        try NPY.write(floats: logP, shape: [3000, 2], to: dir + "/topk/values.npy")
        try assertRefused(
            ["distill", "--teacher-top-k", dir + "/topk", "--arch", "mlp:4", "--out", out] + quiet,
            out: out, mentions: ["topk: top-k values: row 41", "log-probabilities"])
    }

    func testATeacherModelWithNonFiniteOutputsIsRefused() throws {
        let (dir, quiet) = try ringsWithTeacher(seed: "0", prefix: "distill-inputs")
        let out = dir + "/student.safetensors"
        let teacher = try Model.load(from: dir + "/teacher.safetensors")
        teacher.parameters.last!.value[2] = .nan  // the bias of class 2
        try teacher.save(to: dir + "/nan-teacher.safetensors")
        // Outputs cached once.
        try assertRefused(
            [
                "distill", "--teacher", dir + "/nan-teacher.safetensors", "--arch", "mlp:4",
                "--out", out,
            ] + quiet,
            out: out,
            mentions: [
                "nan-teacher.safetensors: the teacher's logit for class 2 of training example 0 is nan"
            ])
        // Teachers run on every batch (an ensemble with a temperature schedule): checked on the first batch.
        try assertRefused(
            [
                "distill", "--teacher", dir + "/teacher.safetensors", "--teacher",
                dir + "/nan-teacher.safetensors",
                "--temperature-schedule", "linear", "--final-temperature", "1", "--arch", "mlp:4",
                "--out", out,
            ] + quiet,
            out: out,
            mentions: [
                "nan-teacher.safetensors: the teacher's logit for class 2 of training example 0 is nan"
            ])
    }

    func testAnArchitectureTooLargeForMemoryIsRefusedWithItsSizes() throws {
        let dir = try ringsWithLabels([:])
        let out = dir + "/m.safetensors"
        try assertRefused(
            ["train", "--data", dir, "--arch", "mlp:200000,200000", "--out", out], out: out,
            mentions: [
                "--arch mlp:200000,200000 has 40 billion parameters", "more than this machine's",
            ])
        // A batch larger than the data takes the data's size, not the flag's.
        let run = try distill([
            "train", "--data", dir, "--arch", "mlp:4", "--epochs", "1", "--batch-size",
            "1000000000000",
            "--quiet", "--out", out,
        ])
        XCTAssertEqual(run.status, 0, run.stderr)
    }
}
