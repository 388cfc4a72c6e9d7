import DistillKit
import DistillTestSupport
import XCTest

/// The commands on a directory of text: train and distil a byte-level transformer, evaluate it.
final class TextCommandTests: XCTestCase {
    func testTrainEvaluateAndDistillOnText() throws {
        let dir = try makeTemporaryDirectory("distill-text-cli")
        try AtomicFile.write(
            Array(String(repeating: "a stitch in time saves nine. ", count: 50).utf8),
            to: dir + "/train.txt")
        try AtomicFile.write(
            Array(String(repeating: "a stitch in time saves nine. ", count: 4).utf8),
            to: dir + "/test.txt")
        let arch = "transformer:layers=1,dim=16,heads=2,context=12"
        let flags = [
            "--data", dir, "--steps", "300", "--optimizer", "adamw", "--lr", "0.003",
            "--weight-decay", "0",
            "--batch-size", "8", "--quiet",
        ]
        let train = try distill(
            ["train", "--arch", arch, "--out", dir + "/lm.safetensors"] + flags)
        XCTAssertEqual(train.status, 0, train.stderr)
        let inspect = try distill(["inspect", dir + "/lm.safetensors"])
        XCTAssertTrue(
            inspect.stdout.contains("layers.2  block:16:2:64:causal: 3280 parameters"),
            inspect.stdout)
        let eval = try distill([
            "eval", "--model", dir + "/lm.safetensors", "--data", dir, "--json",
        ])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let figures = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        // every byte of test.txt after the first
        XCTAssertEqual(figures["count"] as? Int, 4 * 29 - 1)
        let accuracy = try XCTUnwrap(figures["accuracy"] as? Double)
        let nats = try XCTUnwrap(figures["cross_entropy"] as? Double)
        let bits = try XCTUnwrap(figures["bits_per_byte"] as? Double)
        XCTAssertGreaterThan(accuracy, 0.7)
        assertClose(bits, nats / log(2), rtol: 1e-9)
        assertClose(try XCTUnwrap(figures["perplexity"] as? Double), exp(nats), rtol: 1e-9)
        let student = try distill(
            [
                "distill", "--teacher", dir + "/lm.safetensors", "--arch", arch, "--temperature",
                "2", "--alpha", "1",
                "--out", dir + "/student.safetensors",
            ] + flags)
        XCTAssertEqual(student.status, 0, student.stderr)
        XCTAssertEqual(
            try Model.load(from: dir + "/student.safetensors").metadata["teachers"],
            dir + "/lm.safetensors")
        // The student against its teacher; the teacher against itself agrees everywhere, KL 0. The
        // teacher's cached logits over test.txt give the figures the teacher run gives.
        XCTAssertEqual(
            try distill([
                "logits", "--model", dir + "/lm.safetensors", "--data", dir, "--split", "test",
                "--out", dir + "/test-logits.npy",
            ]).status, 0)
        var byTeacherRun: [String: Double] = [:]
        for (model, agreement, teacher) in [
            ("/student.safetensors", nil, ["--teacher", dir + "/lm.safetensors"]),
            ("/student.safetensors", nil, ["--teacher-logits", dir + "/test-logits.npy"]),
            ("/lm.safetensors", 1.0, ["--teacher", dir + "/lm.safetensors"]),
        ] as [(String, Double?, [String])] {
            let run = try distill(
                ["eval", "--model", dir + model, "--data", dir, "--json"] + teacher)
            XCTAssertEqual(run.status, 0, run.stderr)
            let json = try XCTUnwrap(
                try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            let (agreed, kl) = (
                try XCTUnwrap(json["teacher_agreement"] as? Double),
                try XCTUnwrap(json["teacher_kl"] as? Double)
            )
            XCTAssertGreaterThan(agreed, 0.5)
            XCTAssertGreaterThanOrEqual(kl, -1e-9)
            if let agreement {
                XCTAssertEqual(agreed, agreement)
                XCTAssertEqual(kl, 0, accuracy: 1e-9)
            } else if let first = byTeacherRun["agreement"] {
                XCTAssertEqual(agreed, first)
                XCTAssertEqual(kl, try XCTUnwrap(byTeacherRun["kl"]), accuracy: 1e-9)
            } else {
                byTeacherRun = ["agreement": agreed, "kl": kl]
            }
        }
        XCTAssertNil(figures["teacher_agreement"])
        // Cached teacher logits: every byte of train.txt but the last, dense and top-k, each
        // taken by distill; the top-k rows are the dense rows' largest log-probabilities.
        let bytes = 50 * 29
        XCTAssertEqual(
            try distill([
                "logits", "--model", dir + "/lm.safetensors", "--data", dir, "--out",
                dir + "/lm.npy",
            ]).status, 0)
        let dense = try NPY.read(dir + "/lm.npy")
        // Logits of train.txt do not fit test.txt: refused, naming the file.
        let wrongRows = try distill([
            "eval", "--model", dir + "/lm.safetensors", "--data", dir, "--teacher-logits",
            dir + "/lm.npy",
        ])
        XCTAssertEqual(wrongRows.status, 2)
        XCTAssertTrue(wrongRows.stderr.contains("lm.npy: teacher logits are"), wrongRows.stderr)
        XCTAssertEqual(dense.shape, [bytes - 1, 256])
        XCTAssertEqual(
            try distill([
                "logits", "--model", dir + "/lm.safetensors", "--data", dir, "--top-k", "8",
                "--out", dir + "/top8",
            ]).status, 0)
        let (values, indices) = (
            try NPY.read(dir + "/top8/values.npy"), try NPY.read(dir + "/top8/indices.npy")
        )
        XCTAssertEqual(values.shape, [bytes - 1, 8])
        let (d, v, c) = (dense.floats(), values.floats(), try indices.integers())
        for row in [0, 1, 700, bytes - 2] {
            let denseRow = Array(d[(row * 256)..<(row * 256 + 256)])
            let logP = logSoftmaxRow(denseRow)
            assertClose(
                Array(v[(row * 8)..<(row * 8 + 8)]), Array(logP.sorted(by: >).prefix(8)),
                rtol: 1e-6, atol: 1e-6)
            for j in 0..<8 {
                XCTAssertEqual(Double(v[row * 8 + j]), logP[Int(c[row * 8 + j])], accuracy: 1e-6)
            }
        }
        for teacherFlags in [
            ["--teacher-logits", dir + "/lm.npy"], ["--teacher-top-k", dir + "/top8"],
            ["--teacher-top-k", dir + "/top8", "--top-k-mass", "renormalise"],
        ] {
            let run = try distill(
                [
                    "distill", "--arch", arch, "--temperature", "2", "--alpha", "0.5", "--out",
                    dir + "/cached.safetensors",
                ]
                    + teacherFlags + flags)
            XCTAssertEqual(run.status, 0, "\(teacherFlags): \(run.stderr)")
            XCTAssertGreaterThan(
                (try JSONSerialization.jsonObject(
                    with: Data(
                        try distill([
                            "eval", "--model", dir + "/cached.safetensors", "--data", dir, "--json",
                        ]).stdout.utf8))
                    as? [String: Any])?["accuracy"] as? Double ?? 0, 0.5, "\(teacherFlags)")
        }
        // Logits of another length are refused, naming the file.
        try NPY.write(floats: Array(d[0..<(256 * 10)]), shape: [10, 256], to: dir + "/short.npy")
        let short = try distill(
            [
                "distill", "--arch", arch, "--teacher-logits", dir + "/short.npy", "--out",
                dir + "/x.safetensors",
            ] + flags)
        XCTAssertEqual(short.status, 2)
        XCTAssertTrue(
            short.stderr.contains("short.npy: teacher logits are [10, 256]"), short.stderr)
        // Generation: the prompt, then the bytes drawn, at a low temperature from the sentence's
        // own letters; the same seed, the same text.
        let generate = [
            "generate", "--model", dir + "/lm.safetensors", "--prompt", "a stitch in ", "--length",
            "14",
        ]
        let first = try distill(generate + ["--seed", "4", "--temperature", "0.05"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let drawn = first.stdout.dropFirst("a stitch in ".count).dropLast()
        XCTAssertTrue(first.stdout.hasPrefix("a stitch in ") && drawn.count == 14, first.stdout)
        XCTAssertTrue(
            drawn.allSatisfy { "a stitch in time saves nine. ".contains($0) }, first.stdout)
        let (a, b) = (
            try distill(generate + ["--seed", "5"]), try distill(generate + ["--seed", "5"])
        )
        XCTAssertEqual(a.stdout, b.stdout)
        XCTAssertEqual(try distill(generate + ["--temperature", "0"]).status, 2)
        // What text cannot take: one line, status 2, no file.
        let out = dir + "/bad.safetensors"
        let cases: [([String], String)] = [
            (
                [
                    "sweep", "--teacher", dir + "/lm.safetensors", "--arch", "mlp:4",
                    "--temperatures", "1", "--alphas", "0.5",
                    "--out", out,
                ] + flags, "holds text (train.txt), for language models"
            ),
            (["demo", "--quick", "--data", dir, "--out", out], "this command takes examples"),
            (["train", "--arch", "mlp:8", "--out", out] + flags, "text needs a sequence model"),
            (
                [
                    "train", "--arch", "transformer:layers=1,dim=16,heads=2,context=5000", "--out",
                    out,
                ] + flags,
                "needs at least 5001"
            ),
            (
                ["train", "--arch", "transformer:layers=1,dim=16,heads=3,context=12", "--out", out]
                    + flags,
                "heads=3 does not divide dim=16"
            ),
            (
                ["distill", "--teacher-logits", dir + "/train.txt", "--arch", arch, "--out", out]
                    + flags, "train.txt: not a valid NPY file"
            ),
        ]
        for (arguments, expected) in cases {
            let run = try distill(arguments)
            XCTAssertEqual(run.status, 2, "\(arguments): \(run.stderr)")
            XCTAssertTrue(
                run.stderr.contains(expected), "'\(run.stderr)' should mention '\(expected)'")
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        try AtomicFile.write([], to: dir + "/test.txt")
        let empty = try distill(["eval", "--model", dir + "/lm.safetensors", "--data", dir])
        XCTAssertEqual(empty.status, 2)
        XCTAssertTrue(empty.stderr.contains("test.txt: is empty"), empty.stderr)
    }
}
