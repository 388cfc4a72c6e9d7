import DistillKit
import DistillTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A training process killed part way (SIGKILL) and resumed ends with the same model file, bit
/// for bit, as a run that was never interrupted (Adam's moments, dropout masks and the batch
/// order all continue where they stopped).
final class ResumeTests: XCTestCase {
    func testKillAndResumeGivesTheSameModel() throws {
        let dir = try makeTemporaryDirectory("distill-resume")
        try writeRings(to: dir)
        let flags = [
            "--data", dir, "--arch", "mlp:32,32", "--dropout", "0.3", "--optimizer", "adam", "--lr",
            "0.01",
            "--epochs", "6", "--batch-size", "32", "--seed", "4", "--checkpoint-every", "40",
            "--quiet",
        ]
        let reference = try distill(["train"] + flags + ["--out", dir + "/a.safetensors"])
        XCTAssertEqual(reference.status, 0, reference.stderr)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: dir + "/a.state.safetensors"),
            "a finished run removes its state")

        // The same run, killed once its second training state is on disk.
        let process = Process()
        process.executableURL = distillBinary
        process.arguments = ["train"] + flags + ["--out", dir + "/b.safetensors"]
        try process.run()
        let state = dir + "/b.state.safetensors"
        var seen = 0
        var lastModified: Date?
        while process.isRunning && seen < 2 {
            if let date = (try? FileManager.default.attributesOfItem(atPath: state))?[
                .modificationDate] as? Date, date != lastModified
            {
                lastModified = date
                seen += 1
            }
            usleep(2_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(
            process.terminationReason, .uncaughtSignal,
            "the run ended before it could be killed; lower --checkpoint-every")
        XCTAssertTrue(FileManager.default.fileExists(atPath: state))
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: dir + "/b.safetensors"),
            "a killed run leaves no model file")

        let resumed = try distill(
            ["train"] + flags + ["--out", dir + "/b.safetensors", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(
            try readFileBytes(dir + "/b.safetensors"), try readFileBytes(dir + "/a.safetensors"))

        // Ctrl-C stops after the current batch, keeps the best model so far and the state; a
        // resume with other settings is refused, with the same settings it finishes the run.
        let interrupted = Process()
        interrupted.executableURL = distillBinary
        interrupted.arguments = ["train"] + flags + ["--out", dir + "/c.safetensors"]
        interrupted.standardError = FileHandle.nullDevice
        try interrupted.run()
        while interrupted.isRunning
            && !FileManager.default.fileExists(atPath: dir + "/c.state.safetensors")
        { usleep(2_000) }
        kill(interrupted.processIdentifier, SIGINT)
        interrupted.waitUntilExit()
        XCTAssertEqual(interrupted.terminationStatus, 0)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: dir + "/c.safetensors"),
            "Ctrl-C keeps the best model so far")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/c.state.safetensors"))
        let other = try distill(
            ["train"] + flags.map { $0 == "0.01" ? "0.02" : $0 } + [
                "--out", dir + "/c.safetensors", "--resume",
            ])
        XCTAssertEqual(other.status, 2)
        XCTAssertTrue(other.stderr.contains("other settings"), other.stderr)
        let finished = try distill(
            ["train"] + flags + ["--out", dir + "/c.safetensors", "--resume"])
        XCTAssertEqual(finished.status, 0, finished.stderr)
        XCTAssertEqual(
            try readFileBytes(dir + "/c.safetensors"), try readFileBytes(dir + "/a.safetensors"))
    }
}

final class AdaptiveTemperatureCLITests: XCTestCase {
    /// CTKD distils a working student, records the learned temperature (in [1, 21]), and an
    /// interrupted run resumes to the same file (the temperature parameter is part of the state).
    func testCTKDRunsAndResumesExactly() throws {
        let (dir, quiet) = try ringsWithTeacher(seed: "8", prefix: "distill-ctkd")
        let flags =
            [
                "distill", "--teacher", dir + "/teacher.safetensors", "--arch", "mlp:16",
                "--epochs", "12",
                "--batch-size", "32", "--adaptive-temperature", "ctkd", "--checkpoint-every", "30",
            ] + quiet
        let run = try distill(flags + ["--out", dir + "/a.safetensors"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let inspect = try distill(["inspect", dir + "/a.safetensors"]).stdout
        let line = try XCTUnwrap(
            inspect.split(separator: "\n").first { $0.hasPrefix("adaptive_temperature") })
        let learned = try XCTUnwrap(Double(line.split(separator: " ").last!))
        XCTAssertTrue(learned > 1 && learned < 21, "\(learned)")
        XCTAssertNotEqual(learned, 11, "the temperature did not move")

        let interrupted = Process()
        interrupted.executableURL = distillBinary
        interrupted.arguments = flags + ["--out", dir + "/b.safetensors"]
        try interrupted.run()
        while interrupted.isRunning
            && !FileManager.default.fileExists(atPath: dir + "/b.state.safetensors")
        { usleep(2_000) }
        kill(interrupted.processIdentifier, SIGINT)
        interrupted.waitUntilExit()
        let resumed = try distill(flags + ["--out", dir + "/b.safetensors", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(
            try readFileBytes(dir + "/b.safetensors"), try readFileBytes(dir + "/a.safetensors"))
    }
}
