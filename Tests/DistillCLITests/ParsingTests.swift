import ArgumentParser
import DistillKit
import XCTest

@testable import distill

/// Every command parsed in-process: defaults, options, and the validation that runs before any
/// work.
final class ParsingTests: XCTestCase {
    func parse(_ arguments: [String]) throws -> ParsableCommand {
        try Distill.parseAsRoot(arguments)
    }

    func testCommandsParseWithTheirOptions() throws {
        let train = try XCTUnwrap(
            try parse([
                "train", "--arch", "cnn:32,64/fc:256", "--dropout", "0.3", "--epochs", "8",
                "--jitter", "2", "--optimizer", "adamw", "--schedule", "step", "--seed", "7",
                "--out", "m.safetensors",
            ]) as? Train)
        XCTAssertEqual(train.architecture.arch, "cnn:32,64/fc:256")
        XCTAssertEqual(train.training.options.epochs, 8)
        XCTAssertEqual(train.training.options.optimizer, .adamw)
        XCTAssertEqual(train.training.options.schedule, .step)
        XCTAssertEqual(train.training.options.jitter, 2)
        XCTAssertEqual(train.training.options.seed, 7)
        XCTAssertEqual(train.training.batchSize, 128)

        let distill = try XCTUnwrap(
            try parse([
                "distill", "--teacher", "/dev/null", "--teacher", "/dev/null", "--arch",
                "mlp:800,800",
                "--temperature", "20", "--alpha", "0.9", "--labelled", "2000", "--out",
                "s.safetensors",
            ]) as? DistillCommand)
        XCTAssertEqual(distill.teacher.count, 2)
        XCTAssertEqual(distill.temperature, 20)
        XCTAssertEqual(distill.alpha, 0.9)
        XCTAssertEqual(distill.objective, .kl)
        XCTAssertEqual(distill.training.labelled, 2000)

        let eval = try XCTUnwrap(
            try parse(["eval", "--model", "m.safetensors", "--json"]) as? Eval)
        XCTAssertEqual(eval.split, .test)
        XCTAssertTrue(eval.json)
        let predict = try XCTUnwrap(
            try parse([
                "predict", "--model", "m", "--input", "x.idx", "--top", "5", "--format", "json",
            ]) as? Predict)
        XCTAssertEqual(predict.top, 5)
        XCTAssertEqual(predict.format, .json)
        let logits = try XCTUnwrap(
            try parse(["logits", "--model", "m", "--split", "test", "--out", "l.npy"]) as? Logits)
        XCTAssertEqual(logits.split, .test)
        let demo = try XCTUnwrap(try parse(["demo", "--quick"]) as? Demo)
        XCTAssertTrue(demo.quick)
        XCTAssertEqual(demo.out, "distill-demo")
        XCTAssertTrue(try XCTUnwrap(try parse(["demo", "--patient"]) as? Demo).patient)
        XCTAssertThrowsError(try parse(["demo", "--quick", "--patient"]))
        XCTAssertNotNil(try parse(["inspect", "m.safetensors"]) as? Inspect)
        XCTAssertNotNil(
            try parse(["explain", "--teacher-logits=1,2", "--student-logits=2,1"]) as? Explain)
    }

    /// Text gets a transformer's defaults (AdamW at 1e-3, decay 0.01, warm-up over a tenth of the
    /// run, at most 100 steps); examples keep SGD's; a flag given wins for both.
    func testTextDefaults() throws {
        let train = try XCTUnwrap(
            try parse(["train", "--arch", "mlp:8", "--steps", "500", "--out", "m"]) as? Train)
        let (text, examples) = (train.training.textOptions, train.training.options)
        XCTAssertEqual(text.optimizer, .adamw)
        XCTAssertEqual(text.learningRate, 1e-3)
        XCTAssertEqual(text.weightDecay, 0.01)
        XCTAssertEqual(text.warmupSteps, 50)
        XCTAssertEqual(text.schedule, .cosine)
        XCTAssertEqual(examples.optimizer, .sgd)
        XCTAssertEqual(examples.learningRate, 0.05)
        XCTAssertEqual(examples.warmupSteps, 0)
        let given = try XCTUnwrap(
            try parse([
                "train", "--arch", "mlp:8", "--optimizer", "sgd", "--lr", "0.2", "--warmup", "3",
                "--out", "m",
            ])
                as? Train)
        XCTAssertEqual(given.training.textOptions.optimizer, .sgd)
        XCTAssertEqual(given.training.textOptions.learningRate, 0.2)
        XCTAssertEqual(given.training.textOptions.warmupSteps, 3)
    }

    /// --hard-reduction reaches the loss; labelled by default.
    func testHardReductionFlag() throws {
        let base = ["distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--out", "m"]
        let plain = try XCTUnwrap(try parse(base) as? DistillCommand)
        XCTAssertEqual(try plain.loss.hardReduction, .labelled)
        let all = try XCTUnwrap(try parse(base + ["--hard-reduction", "all"]) as? DistillCommand)
        XCTAssertEqual(try all.loss.hardReduction, .all)
        XCTAssertThrowsError(try parse(base + ["--hard-reduction", "some"]))
    }

    /// --objective dkd and dist with their weights reach the loss (the papers' defaults: DKD 1
    /// and 8, DIST 1 and 1); a list of other than two weights >= 0 is refused.
    func testDecoupledObjectiveFlags() throws {
        let base = ["distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--out", "m"]
        let dkd = try XCTUnwrap(try parse(base + ["--objective", "dkd"]) as? DistillCommand)
        XCTAssertEqual(try dkd.loss.objective, .dkd)
        XCTAssertEqual(try dkd.loss.dkd, DKDWeights(alpha: 1, beta: 8))
        let dist = try XCTUnwrap(
            try parse(base + ["--objective", "dist", "--dist-weights", "2,0.5"]) as? DistillCommand)
        XCTAssertEqual(try dist.loss.dist, DISTWeights(beta: 2, gamma: 0.5))
        let scaled = try XCTUnwrap(try parse(base + ["--kd-scale", "4"]) as? DistillCommand)
        XCTAssertEqual(try scaled.loss.softScale, 4)
        XCTAssertThrowsError(try parse(base + ["--kd-scale", "0"]))
        XCTAssertEqual(try SweepTechnique.kd8.loss(temperature: 4, alpha: 0.7).softScale, 8)
        XCTAssertEqual(try SweepTechnique.dist.loss(temperature: 4, alpha: 0.7).objective, .dist)
        for bad in ["1", "1,2,3", "-1,2"] {
            XCTAssertThrowsError(try parse(base + ["--objective", "dkd", "--dkd-weights=\(bad)"])) {
                XCTAssertTrue("\($0)".contains("--dkd-weights takes two weights"), "\($0)")
            }
        }
    }

    /// --soft-warmup reaches the options of examples and of text; negative, or with an objective
    /// whose soft term has no weight, it is refused.
    func testSoftWarmupFlag() throws {
        let base = ["distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--out", "m"]
        let dkd = try XCTUnwrap(
            try parse(base + ["--objective", "dkd", "--soft-warmup", "500"]) as? DistillCommand)
        XCTAssertEqual([dkd.options.softWarmupSteps, dkd.textOptions.softWarmupSteps], [500, 500])
        XCTAssertEqual(try XCTUnwrap(try parse(base) as? DistillCommand).options.softWarmupSteps, 0)
        XCTAssertThrowsError(try parse(base + ["--soft-warmup=-1"])) {
            XCTAssertTrue("\($0)".contains("--soft-warmup must be >= 0"), "\($0)")
        }
        XCTAssertThrowsError(try parse(base + ["--objective", "mse", "--soft-warmup", "10"])) {
            XCTAssertTrue("\($0)".contains("--soft-warmup takes the kl, dkd or dist"), "\($0)")
        }
    }

    /// The augmentation flags reach the training options.
    func testAugmentationFlags() throws {
        let command = try XCTUnwrap(
            try parse([
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--out", "m", "--flip",
                "--cutout", "4", "--jitter", "2",
            ]) as? DistillCommand)
        let options = command.training.options
        XCTAssertEqual([options.jitter, options.cutout], [2, 4])
        XCTAssertTrue(options.flip && options.augments)
        XCTAssertThrowsError(
            try parse(["train", "--arch", "mlp:8", "--out", "m", "--cutout=-1"]))
        let mixed = try XCTUnwrap(
            try parse([
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--out", "m", "--mixup",
                "0.2",
            ])
                as? DistillCommand)
        XCTAssertEqual(mixed.training.options.mixup, 0.2)
        XCTAssertTrue(mixed.training.options.augments)
        // Mixup with a batch of one, a negative parameter, or cached teacher logits: refused.
        for bad in [
            ["train", "--arch", "mlp:8", "--out", "m", "--mixup", "1", "--batch-size", "1"],
            ["train", "--arch", "mlp:8", "--out", "m", "--mixup=-0.5"],
            [
                "distill", "--teacher-logits", "/dev/null", "--arch", "mlp:8", "--out", "m",
                "--mixup", "1",
            ],
        ] {
            XCTAssertThrowsError(try parse(bad)) {
                XCTAssertTrue("\($0)".contains("--mixup"), "\($0)")
            }
        }
    }

    func testValidationRejectsBadValuesBeforeWork() {
        let bad: [[String]] = [
            ["train", "--arch", "mlp:0", "--out", "m"],
            ["train", "--arch", "mlp:8", "--epochs", "0", "--out", "m"],
            ["train", "--arch", "mlp:8", "--epochs", "1000001", "--out", "m"],
            ["train", "--arch", "mlp:8", "--classes", "0", "--out", "m"],
            ["train", "--arch", "mlp:8", "--classes", "16777217", "--out", "m"],
            ["train", "--arch", "mlp:8", "--lr", "-1", "--out", "m"],
            ["train", "--arch", "mlp:8", "--dropout", "1", "--out", "m"],
            ["train", "--arch", "mlp:8", "--validation-split", "2.5", "--out", "m"],
            ["train", "--arch", "mlp:8", "--out", "/nonexistent/dir/m"],
            ["distill", "--arch", "mlp:8", "--out", "m"],
            [
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--temperature", "-2",
                "--out", "m",
            ],
            [
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--alpha", "1.1", "--out",
                "m",
            ],
            [
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--labelled-only", "--out",
                "m",
            ],
            [
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--temperature-schedule",
                "cosine", "--out", "m",
            ],
            [
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--final-temperature", "2",
                "--out", "m",
            ],
            [
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--temperature-schedule",
                "linear", "--final-temperature", "0", "--out", "m",
            ],
            [
                "distill", "--teacher", "/dev/null", "--arch", "mlp:8", "--objective", "mse",
                "--logit-standardization", "--out", "m",
            ],
            ["predict", "--model", "m", "--input", "x", "--top", "0"],
            ["eval", "--model", "m", "--split", "holdout"],
        ]
        for arguments in bad {
            XCTAssertThrowsError(try parse(arguments), "\(arguments)")
        }
    }
}
