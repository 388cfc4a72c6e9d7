import DistillCore
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillTraining

/// A transformer language model end to end: built from its spec, trained on next-token targets
/// through the ordinary training step, saved and loaded.
final class TransformerModelTests: XCTestCase {
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
