import DistillCore
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillTraining

/// A training step that splits the batch's examples across the cores (`BatchSplit`) computes the
/// step the whole batch would: the same logits, loss and update, up to rounding.
final class BatchSplitTests: XCTestCase {
    private let spec = "transformer:layers=2,dim=8,heads=2,context=6,tied"

    private func model(dropout: Float = 0) throws -> Model {
        var generator = SeededGenerator(seed: 11)
        return try Model(
            spec: ArchitectureSpec(parsing: spec), inputShape: [6], classes: 256, dropout: dropout,
            generator: &generator)
    }

    /// Five windows (parts of 2 and 3 examples, or 1, 2 and 2) and their next-byte labels, one
    /// position unlabelled.
    private func batch() -> (Tensor, [Int32]) {
        var generator = SeededGenerator(seed: 12)
        let ids = Tensor(
            shape: [5, 6], values: (0..<30).map { _ in Float(generator.next() % 256) })
        var labels = (0..<30).map { _ in Int32(generator.next() % 256) }
        labels[7] = -1
        return (ids, labels)
    }

    func testTransformersSplitByDefaultOtherModelsDoNot() throws {
        XCTAssertEqual(TrainingStep.defaultParts(for: try model()), processorCount)
        var generator = SeededGenerator(seed: 1)
        let mlp = try Model(
            spec: ArchitectureSpec(parsing: "mlp:8"), inputShape: [4], classes: 3,
            generator: &generator)
        XCTAssertEqual(TrainingStep.defaultParts(for: mlp), 1)
    }

    /// Two SGD steps with momentum (the second uses the first's velocity) on the whole batch and
    /// in 2 and 3 parts: the same loss and logits, and the same parameters after each step.
    func testSplitStepsMatchTheWholeBatchStep() throws {
        let (ids, labels) = batch()
        try assertSplitStepsMatch(model: { try self.model() }, batch: ids, labels: labels)
    }

    /// A tagger's encoder, whose attention masks the padded positions of each part's own sentences
    /// (`Model.forward` sets the padding per pass): split or not, the same step.
    func testSplitTaggerStepsMatchTheWholeBatchStep() throws {
        let (sentences, positions, slots) = (3, 6, ArchitectureSpec.wordFeatureSlots)
        var generator = SeededGenerator(seed: 13)
        var features = (0..<(sentences * positions * slots)).map { _ in
            Float(1 + generator.next() % 500)
        }
        var labels = (0..<(sentences * positions)).map { _ in Int32(generator.next() % 4) }
        for (sentence, words) in [(0, 4), (2, 2)] {  // padding after the sentence's last word
            for position in words..<positions {
                let row = sentence * positions + position
                for slot in 0..<slots { features[row * slots + slot] = 0 }
                labels[row] = -1
            }
        }
        try assertSplitStepsMatch(
            model: {
                var generator = SeededGenerator(seed: 14)
                return try Model(
                    spec: ArchitectureSpec(parsing: "encoder:layers=2,dim=8,heads=2,context=6"),
                    inputShape: [positions, slots], classes: 4, generator: &generator)
            },
            batch: Tensor(shape: [sentences, positions, slots], values: features),
            labels: labels, parts: [2, 3])
    }

    private func assertSplitStepsMatch(
        model make: () throws -> Model, batch: Tensor, labels: [Int32], parts: [Int] = [2, 3],
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        for parts in parts {
            let (split, reference) = (try make(), try make())
            let splitStep = TrainingStep(
                model: split, optimizer: SGD(learningRate: 0.5, momentum: 0.9), parts: parts)
            let referenceStep = TrainingStep(
                model: reference, optimizer: SGD(learningRate: 0.5, momentum: 0.9), parts: 1)
            let start = split.parameters.flatMap(\.value.values)
            for round in 0..<2 {
                let (a, b) = try labels.withUnsafeBufferPointer { y in
                    (
                        try referenceStep.run(batch: batch, labels: y),
                        try splitStep.run(batch: batch, labels: y)
                    )
                }
                XCTAssertEqual(b.logits.shape, a.logits.shape, file: file, line: line)
                assertClose(
                    b.logits.values, a.logits.values, rtol: 1e-5, atol: 1e-5, file: file, line: line
                )
                assertClose(
                    b.loss, a.loss, rtol: 1e-6, "parts \(parts), step \(round)", file: file,
                    line: line)
                for (p, q) in zip(split.parameters, reference.parameters) {
                    assertClose(
                        p.value.values, q.value.values, rtol: 1e-5, atol: 1e-6, p.name, file: file,
                        line: line)
                }
            }
            XCTAssertNotEqual(
                split.parameters.flatMap(\.value.values), start, file: file, line: line)
        }
    }

    /// A batch of one example is not split; more parts than examples make one part per example.
    func testPartsNeverOutnumberExamples() throws {
        let model = try model()
        let split = BatchSplit(model: model, maximumParts: 4)
        let (ids, _) = batch()
        _ = split.forward(Tensor(shape: [1, 6], values: Array(ids.values[0..<6])))
        XCTAssertFalse(split.isSplit)
        let logits = split.forward(Tensor(shape: [3, 6], values: Array(ids.values[0..<18])))
        XCTAssertTrue(split.isSplit)
        assertClose(
            logits.values,
            model.replica().forward(ids, mode: .inference).values[0..<(18 * 256)].map { $0 },
            rtol: 1e-5, atol: 1e-5)
    }

    /// With dropout, the replicas draw their masks from generators split off the model's at each
    /// step: a run that makes a new step (new replicas) halfway, as a resumed run does, agrees bit
    /// for bit with one that does not; and the parts' masks differ.
    func testDropoutFollowsTheModelsGenerators() throws {
        let (ids, labels) = batch()
        var runs: [[Float]] = []
        for renewed in [false, true] {
            let model = try model(dropout: 0.3)
            let optimizer = Adam.adamW(learningRate: 0.01)
            var step = TrainingStep(model: model, optimizer: optimizer, parts: 2)
            for k in 0..<3 {
                if renewed && k == 1 {
                    step = TrainingStep(model: model, optimizer: optimizer, parts: 2)
                }
                _ = try labels.withUnsafeBufferPointer { try step.run(batch: ids, labels: $0) }
            }
            runs.append(model.parameters.flatMap(\.value.values))
        }
        XCTAssertTrue(runs[0] == runs[1], "the runs differ")
        // The same example in both parts of a batch: its logits differ (different masks).
        let model = try model(dropout: 0.3)
        let split = BatchSplit(model: model, maximumParts: 2)
        let first = Array(ids.values[0..<6])
        let logits = split.forward(Tensor(shape: [2, 6], values: first + first))
        XCTAssertTrue(logits.values[0..<(6 * 256)] != logits.values[(6 * 256)...])
    }

    /// A replica shares the model's weights (an update to one is seen by the other) and keeps its
    /// own gradients; its tied head shares its own embedding's weight.
    func testReplicaSharesWeightsNotGradients() throws {
        let model = try model()
        let replica = model.replica()
        XCTAssertEqual(model.parameters.count, replica.parameters.count)
        for (p, q) in zip(model.parameters, replica.parameters) {
            XCTAssertFalse(p === q)
            XCTAssertTrue(p.value.storage === q.value.storage)
        }
        XCTAssertTrue(
            (replica.network.layers.last as? Linear)?.weight
                === (replica.network.layers.first as? Embedding)?.weight)
        let (ids, _) = batch()
        model.parameters[0].value[3] += 0.5
        assertIdentical(replica.logits(ids).values, model.logits(ids).values)
        model.zeroGradients()
        replica.zeroGradients()
        let y = replica.forward(ids, mode: .training)
        replica.backward(Tensor(shape: y.shape, values: fixtureValues(y.count, seed: 3)))
        XCTAssertFalse(replica.parameters[0].hasZeroGradient)
        XCTAssertTrue(model.parameters.allSatisfy(\.hasZeroGradient))
    }

    /// `addToGradient` overwrites a gradient that is logically zero, adds to one that is not, and
    /// follows a redirection's scale.
    func testAddToGradient() {
        let p = Parameter(name: "weight", value: Tensor(zeros: [3]), isWeight: true)
        p.zeroGradient()
        p.addToGradient(Tensor(shape: [3], values: [1, 2, 3]))
        p.addToGradient(Tensor(shape: [3], values: [10, 20, 30]))
        XCTAssertEqual(p.gradient?.values, [11, 22, 33])
        let velocity = Tensor(shape: [3], values: [1, 1, 2])
        p.accumulate(into: velocity, scaling: 0.5)
        p.addToGradient(Tensor(shape: [3], values: [1, 2, 3]))
        XCTAssertEqual(velocity.values, [1.5, 2.5, 4])
    }
}
