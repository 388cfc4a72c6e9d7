import DistillCore
import DistillData
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillTraining

/// Language modelling over bytes: the data directory, training windows, evaluation windows and
/// a transformer trained and distilled on text.
final class TextTrainingTests: XCTestCase {
    /// A directory with `train.txt` and `test.txt` of `text` repeated.
    func textDirectory(_ text: String, trainCopies: Int = 60, testCopies: Int = 6) throws -> String
    {
        let dir = try makeTemporaryDirectory("distill-text")
        try AtomicFile.write(
            Array(String(repeating: text, count: trainCopies).utf8), to: dir + "/train.txt")
        try AtomicFile.write(
            Array(String(repeating: text, count: testCopies).utf8), to: dir + "/test.txt")
        return dir
    }

    func testSplitsWindowsAndEvaluationCoverage() throws {
        let dir = try textDirectory("abcdefghij", trainCopies: 100, testCopies: 1)  // 1,000 bytes
        let data = try TextDataset.load(dir, split: .count(100))
        XCTAssertEqual(data.training.count, 900)
        XCTAssertEqual(data.validation.count, 100)
        XCTAssertEqual(data.validation[0], data.training[0])  // 900 is a multiple of 10
        // Evaluation: every byte after the first predicted once, in windows of the context.
        let windows = data.test.evaluationWindows(context: 4)
        XCTAssertEqual(windows, [0..<4, 4..<8, 8..<9])
        // Training windows: seeded, regenerated exactly, labels the next bytes.
        let a = try TextWindows(split: data.training, context: 5, batchSize: 7, seed: 3)
        let b = try TextWindows(split: data.training, context: 5, batchSize: 7, seed: 3)
        XCTAssertEqual(a.batchesPerEpoch, (899 / 5 + 6) / 7)
        a.start(epoch: 2)
        b.start(epoch: 2)
        let (x, y) = (a.next()!, b.next()!)
        XCTAssertEqual(x.inputs.values, y.inputs.values)
        XCTAssertEqual(x.inputs.shape, [7, 5])
        for (row, offset) in x.indices.enumerated() {
            for i in 0..<5 {
                XCTAssertEqual(x.inputs[row * 5 + i], Float(data.training[offset + i]))
                XCTAssertEqual(x.labels![row * 5 + i], Int32(data.training[offset + i + 1]))
            }
        }
        // 10 bytes only
        XCTAssertThrowsError(try TextWindows(split: data.test, context: 10, batchSize: 1, seed: 0))
        // Missing and empty files are named.
        try AtomicFile.write([], to: dir + "/test.txt")
        XCTAssertThrowsError(try TextDataset.load(dir)) {
            XCTAssertTrue("\($0)".contains("test.txt: is empty"), "\($0)")
        }
        XCTAssertThrowsError(try TextDataset.load(dir + "/none")) {
            XCTAssertTrue("\($0)".contains("train.txt"), "\($0)")
        }
    }

    /// Evaluation splits each batch's windows over the cores (as a training step does), the
    /// teacher's too: on 2 and 3 parts, with a short last batch and a padded last window, the
    /// figures are those of one pass over each batch; and it leaves the model's dropout
    /// generators as they were.
    func testEvaluationSplitOverPartsGivesTheSameFigures() throws {
        let dir = try textDirectory("the quick brown fox jumps over the lazy dog. ", testCopies: 3)
        let data = try TextDataset.load(dir)
        var generator = SeededGenerator(seed: 8)
        let spec = try ArchitectureSpec(parsing: "transformer:layers=1,dim=8,heads=2,context=12")
        let model = try Model(
            spec: spec, inputShape: [12], classes: 256, dropout: 0.1, generator: &generator)
        let teacher = try Model(spec: spec, inputShape: [12], classes: 256, generator: &generator)
        let generators = { model.network.dropoutLayers.map(\.generator) }
        let before = generators()
        XCTAssertFalse(before.isEmpty)
        XCTAssertEqual(data.test.evaluationWindows(context: 12).count % 5, 2)
        let whole = try TextEvaluation(
            model: model, split: data.test, teacher: teacher, batchSize: 5, parts: 1)
        for parts in [2, 3] {
            let parted = BatchSplit(model: model, maximumParts: parts)
            let split = try TextEvaluation(
                running: parted, over: data.test, teacher: teacher, batchSize: 5, parts: parts)
            XCTAssertTrue(parted.isSplit, "the last batch ran in parts")
            XCTAssertEqual(split.count, whole.count)
            assertClose(split.crossEntropy, whole.crossEntropy, rtol: 1e-6, "\(parts) parts")
            XCTAssertEqual(split.accuracy, whole.accuracy, "\(parts) parts")
            XCTAssertEqual(split.teacherAgreement, whole.teacherAgreement, "\(parts) parts")
            assertClose(split.teacherKL!, whole.teacherKL!, rtol: 1e-6, "\(parts) parts")
        }
        XCTAssertEqual(generators(), before)
    }

    /// A small transformer learns a repeated sentence; a second one distils from it online.
    func testTransformerLearnsAndDistilsText() throws {
        let dir = try textDirectory("the cat sat on the mat. ")
        let data = try TextDataset.load(dir)
        func model(seed: UInt64) throws -> Model {
            var generator = SeededGenerator(seed: seed)
            return try Model(
                spec: ArchitectureSpec(parsing: "transformer:layers=1,dim=24,heads=2,context=16"),
                inputShape: [16],
                classes: 256, generator: &generator)
        }
        var options = TrainingOptions()
        options.steps = 200
        options.validations = 3
        options.batchSize = 8
        options.optimizer = .adamw
        options.learningRate = 3e-3
        options.weightDecay = 0
        let teacher = try model(seed: 1)
        let summary = try Trainer(
            model: teacher, options: options, text: data.training, validation: data.validation
        ).run()
        let evaluation = try TextEvaluation(model: teacher, split: data.test)
        XCTAssertEqual(evaluation.count, data.test.count - 1)
        XCTAssertGreaterThan(try XCTUnwrap(summary.bestValidationAccuracy), 0.8)
        XCTAssertGreaterThan(evaluation.accuracy, 0.8)
        XCTAssertLessThan(evaluation.bitsPerByte, 1.5)
        // Distilled online (the teacher runs on the student's windows), soft targets only.
        let student = try model(seed: 2)
        _ = try Trainer(
            model: student, options: options, text: data.training, validation: data.validation,
            teacher: .models([teacher]), loss: DistillationLoss(temperature: 2, alpha: 1)
        ).run()
        XCTAssertGreaterThan(try TextEvaluation(model: student, split: data.test).accuracy, 0.8)
        // A classifier is refused.
        var generator = SeededGenerator(seed: 3)
        let mlp = try Model(
            spec: ArchitectureSpec(parsing: "mlp:4"), inputShape: [16], classes: 256,
            generator: &generator)
        XCTAssertThrowsError(
            try Trainer(model: mlp, options: options, text: data.training, validation: nil))
    }
}

extension TextTrainingTests {
    /// The top-k selection of `distill logits --top-k`: largest first, ties to the lower class,
    /// k = C a full ordering; log-sum-exp against its definition.
    func testTopKSelection() {
        let values: [Float] = [1, 3, 3, 0, 2]
        var row = values
        row.withUnsafeMutableBufferPointer { p in
            for (k, expected) in [(1, [1]), (3, [1, 2, 4]), (5, [1, 2, 4, 0, 3])] {
                var top = [Int](repeating: 0, count: k)
                TextLogits.largest(p.baseAddress!, k: k, classes: 5, into: &top)
                XCTAssertEqual(top, expected)
            }
            XCTAssertEqual(
                TextLogits.logSumExp(p.baseAddress!, 5),
                log(values.reduce(0.0) { $0 + exp(Double($1)) }),
                accuracy: 1e-12)
        }
    }
}
