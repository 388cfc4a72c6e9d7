import DistillCore
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillData
@testable import DistillTraining

/// A transformer language model end to end: built from its spec, trained on next-token targets
/// through the ordinary training step, saved and loaded.
final class TransformerModelTests: XCTestCase {
    /// A sequence teacher runs on 512 positions at a time (4 windows of 128 here: chunks of 4, 4
    /// and 2 for a batch of 10), each chunk split over 1, 2 or 3 cores; its outputs are the whole
    /// batch's forward pass, row for row, on buffers sized by a first batch too.
    func testLiveTeacherRunsInChunks() throws {
        XCTAssertEqual(LiveTeachers.positionsPerForward / 128, 4)
        var generator = SeededGenerator(seed: 3)
        let teacher = try Model(
            spec: ArchitectureSpec(parsing: "transformer:layers=1,dim=8,heads=2,context=128"),
            inputShape: [128], classes: 256, generator: &generator)
        let inputs = Tensor(
            shape: [10, 128], values: (0..<1280).map { _ in Float(generator.next() % 256) })
        let whole = teacher.forward(inputs, mode: .inference).values
        let batch = Batch(inputs: inputs, labels: nil, teacher: nil, indices: Array(0..<10)[...])
        for parts in [1, 2, 3] {
            let live = LiveTeachers([teacher], parts: parts)
            for _ in 0..<2 {
                guard case .logits(let rows) = live.output(for: batch) else {
                    return XCTFail("one teacher gives logits")
                }
                assertClose(
                    Array(rows), whole.map(Double.init), rtol: 1e-5, atol: 1e-5, "\(parts) parts")
            }
        }
    }

    /// A model allocates its gradient buffers only when it trains: none after a live teacher's
    /// inference passes, every parameter's after an AdamW step, none under SGD with momentum (its
    /// backward pass adds straight into the momentum buffers).
    func testGradientBuffersOnlyForTraining() throws {
        let spec = try ArchitectureSpec(parsing: "transformer:layers=1,dim=8,heads=2,context=16")
        var generator = SeededGenerator(seed: 5)
        let inputs = Tensor(
            shape: [4, 16], values: (0..<64).map { _ in Float(generator.next() % 256) })
        let labels = (0..<64).map { _ in Int32(generator.next() % 256) }
        let batch = Batch(inputs: inputs, labels: nil, teacher: nil, indices: Array(0..<4)[...])
        let teacher = try Model(spec: spec, inputShape: [16], classes: 256, generator: &generator)
        _ = LiveTeachers([teacher]).output(for: batch)
        XCTAssertFalse(teacher.parameters.contains { $0.holdsGradientBuffer })
        for (optimizer, holds) in [
            (Adam.adamW(learningRate: 1e-3) as any Optimizer, true),
            (SGD(learningRate: 0.1, momentum: 0.9), false),
        ] {
            let model = try Model(spec: spec, inputShape: [16], classes: 256, generator: &generator)
            let step = TrainingStep(model: model, optimizer: optimizer, parts: 1)
            _ = try labels.withUnsafeBufferPointer { try step.run(batch: inputs, labels: $0) }
            XCTAssertEqual(
                model.parameters.map(\.holdsGradientBuffer),
                Array(repeating: holds, count: model.parameters.count), "\(type(of: optimizer))")
        }
    }

    func testSpecFootprintAndLayers() throws {
        let spec = try ArchitectureSpec(
            parsing: "transformer:layers=2,dim=12,heads=3,context=9,mlp=20")
        XCTAssertEqual(spec.description, "transformer:layers=2,dim=12,heads=3,context=9,mlp=20")
        XCTAssertEqual(try ArchitectureSpec(parsing: spec.description), spec)
        var generator = SeededGenerator(seed: 1)
        let model = try Model(spec: spec, inputShape: [9], classes: 256, generator: &generator)
        XCTAssertEqual(
            spec.footprint(inputShape: [9], classes: 256).parameters, Double(model.parameterCount))
        XCTAssertEqual(model.positions, 9)
        XCTAssertEqual(
            model.network.descriptor,
            "embedding:256:12 position:9:12 block:12:3:20:causal block:12:3:20:causal layernorm:12 linear:12:256"
        )
        for bad in [
            "transformer:layers=2,dim=12,heads=5,context=9",
            "transformer:layers=2,dim=12,context=9",
            "transformer:layers=2,dim=12,heads=3,context=9,layers=3",
            "transformer:layers=2,dim=12,heads=3,context=0",
        ] {
            XCTAssertThrowsError(try ArchitectureSpec(parsing: bad), bad)
        }
        XCTAssertThrowsError(
            // > context
            try Model(spec: spec, inputShape: [10], classes: 256, generator: &generator))
    }

    /// A tied head shares the embedding's weight: counted once, both layers' gradients summed into
    /// it (checked against central differences), saved once and tied again on loading.
    func testTiedHead() throws {
        let spec = try ArchitectureSpec(
            parsing: "transformer:layers=1,dim=8,heads=2,context=5,tied")
        XCTAssertEqual(try ArchitectureSpec(parsing: spec.description), spec)
        var generator = SeededGenerator(seed: 4)
        let model = try Model(spec: spec, inputShape: [5], classes: 13, generator: &generator)
        XCTAssertEqual(
            spec.footprint(inputShape: [5], classes: 13).parameters, Double(model.parameterCount))
        let embedding = try XCTUnwrap(model.network.layers.first as? Embedding)
        let head = try XCTUnwrap(model.network.layers.last as? Linear)
        XCTAssertTrue(head.weight === embedding.weight)
        XCTAssertEqual(model.parameters.filter { $0 === embedding.weight }.count, 1)
        // L = sum(w * logits) for fixed w; dL/d(shared weight) against central differences.
        let ids = Tensor(shape: [2, 5], values: [1, 4, 4, 12, 0, 7, 3, 1, 9, 2])
        let w = Tensor(shape: [10, 13], values: fixtureValues(130, seed: 6))
        func objective() -> Double {
            let y = model.forward(ids, mode: .training)
            return (0..<y.count).reduce(0.0) { $0 + Double(y[$1]) * Double(w[$1]) }
        }
        model.zeroGradients()
        _ = objective()
        model.backward(w)
        let analytic = embedding.weight.gradient!.values
        // used and unused rows (6 is only in the head)
        let entries = [0, 5, 4 * 8 + 3, 9 * 8 + 7, 12 * 8, 6 * 8 + 2]
        for e in entries {
            let original = embedding.weight.value[e]
            let numeric = centralDifferences([original], step: 1e-2) { probe in
                embedding.weight.value[e] = probe[0]
                return objective()
            }[0]
            embedding.weight.value[e] = original
            assertClose(analytic[e], numeric, rtol: 2e-3, atol: 1e-3, "entry \(e)")
        }
        let path = try makeTemporaryDirectory("distill-tied") + "/lm.safetensors"
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        XCTAssertTrue(
            (loaded.network.layers.last as? Linear)?.weight
                === (loaded.network.layers.first as? Embedding)?.weight)
        assertIdentical(loaded.logits(ids).values, model.logits(ids).values)
    }

    /// Tokens count up modulo 11 from a random start; the model learns to predict the next one at
    /// every position (logits `[B T, 11]`), and a saved model gives the same logits.
    func testLearnsNextTokensAndRoundTrips() throws {
        var generator = SeededGenerator(seed: 2)
        let (t, vocabulary, batch) = (8, 11, 16)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "transformer:layers=1,dim=16,heads=2,context=8"),
            inputShape: [t],
            classes: vocabulary, generator: &generator)
        let step = TrainingStep(
            model: model, optimizer: Adam.adamW(learningRate: 0.01, weightDecay: 0))
        func sample() -> (Tensor, [Int32]) {
            var ids: [Float] = []
            var next: [Int32] = []
            for _ in 0..<batch {
                let start = Int(generator.next() % UInt64(vocabulary))
                ids += (0..<t).map { Float((start + $0) % vocabulary) }
                next += (0..<t).map { Int32((start + $0 + 1) % vocabulary) }
            }
            return (Tensor(shape: [batch, t], values: ids), next)
        }
        var first: Float = 0
        var last: Float = 0
        for k in 0..<150 {
            let (x, y) = sample()
            let loss = try y.withUnsafeBufferPointer { try step.run(batch: x, labels: $0).loss }
            if k == 0 { first = loss }
            last = loss
        }
        XCTAssertGreaterThan(first, 2)  // about log 11 at the start
        XCTAssertLessThan(last, 0.05)
        let (x, y) = sample()
        let logits = model.logits(x)
        XCTAssertEqual(logits.shape, [batch * t, vocabulary])
        let report = EvaluationReport(logits: logits.values, labels: y, classes: vocabulary)
        XCTAssertEqual(report.accuracy, 1)
        let path = try makeTemporaryDirectory("distill-transformer") + "/lm.safetensors"
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        assertIdentical(loaded.logits(x).values, logits.values)
    }
}
