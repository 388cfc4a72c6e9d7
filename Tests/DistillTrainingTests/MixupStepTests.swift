import DistillCore
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillData
@testable import DistillTraining

/// A mixup step's loss and gradient: on a linear model the update `W' = W - lr g^T X` shows the
/// gradient the step used, against the one the formula gives from the loss's own evaluations.
final class MixupStepTests: XCTestCase {
    func linearModel() throws -> Model {
        var generator = SeededGenerator(seed: 3)
        return try Model(
            spec: ArchitectureSpec(parsing: "mlp"), inputShape: [5], classes: 4,
            generator: &generator)
    }

    /// `d loss / d logits` of `loss` with `labels`, by the array convenience.
    func gradient(
        _ loss: DistillationLoss, _ student: [Float], _ teacher: [Float], _ labels: [Int]?
    ) throws -> (Float, [Float]) {
        let (value, g) = try loss.evaluate(
            studentLogits: student, teacherLogits: teacher, labels: labels, classes: 4)
        return (value.loss, g)
    }

    func testMixedDistillationStepCombinesTheTerms() throws {
        let x = Tensor(shape: [3, 5], values: fixtureValues(15, seed: 1, scale: 1))
        let teacher = fixtureValues(12, seed: 2, scale: 2)
        let labels: [Int32] = [1, -1, 3]
        let partners: [Int32] = [3, 1, -1]
        let lambda: Float = 0.3
        let loss = try DistillationLoss(temperature: 2, alpha: 0.6)
        let model = try linearModel()
        let w0 = model.parameters.map { $0.value.values }
        let s = model.forward(x, mode: .inference).values
        // alpha S + (1 - alpha) (lambda H(y) + (1 - lambda) H(y_partner)), S over every row.
        let (soft, gs) = try gradient(try loss.with(alpha: 1), s, teacher, nil)
        let (h1, g1) = try gradient(try loss.with(alpha: 0), s, teacher, labels.map(Int.init))
        let (h2, g2) = try gradient(try loss.with(alpha: 0), s, teacher, partners.map(Int.init))
        let expected = 0.6 * soft + 0.4 * (lambda * h1 + (1 - lambda) * h2)
        let g = (0..<12).map { 0.6 * gs[$0] + 0.4 * (lambda * g1[$0] + (1 - lambda) * g2[$0]) }
        let step = TrainingStep(model: model, optimizer: SGD(learningRate: 1))
        let value = try labels.withUnsafeBufferPointer { y in
            try teacher.withUnsafeBufferPointer { t in
                try step.run(
                    batch: x, teacher: .logits(t), labels: y, loss: loss,
                    mixing: (partners, lambda)
                ).value
            }
        }
        XCTAssertEqual(value.loss, expected, accuracy: 1e-5)
        XCTAssertEqual(value.hardLoss ?? -1, lambda * h1 + (1 - lambda) * h2, accuracy: 1e-5)
        assertUpdate(model, from: w0, x: x, gradient: g)
    }

    /// A mixed batch without any label is the soft term alone, as an unmixed one is; the step's
    /// first mixed batch needs no buffer from an earlier one.
    func testMixedBatchWithoutLabelsIsTheSoftTerm() throws {
        let x = Tensor(shape: [3, 5], values: fixtureValues(15, seed: 5, scale: 1))
        let teacher = fixtureValues(12, seed: 6, scale: 2)
        let none: [Int32] = [-1, -1, -1]
        let loss = try DistillationLoss(temperature: 2, alpha: 0.6)
        let model = try linearModel()
        let w0 = model.parameters.map { $0.value.values }
        let s = model.forward(x, mode: .inference).values
        let (soft, gs) = try gradient(loss, s, teacher, [-1, -1, -1])
        let step = TrainingStep(model: model, optimizer: SGD(learningRate: 1))
        let value = try none.withUnsafeBufferPointer { y in
            try teacher.withUnsafeBufferPointer { t in
                try step.run(
                    batch: x, teacher: .logits(t), labels: y, loss: loss, mixing: (none, 0.4)
                ).value
            }
        }
        XCTAssertEqual(value.loss, soft, accuracy: 1e-5)
        XCTAssertNil(value.hardLoss)
        assertUpdate(model, from: w0, x: x, gradient: gs)
    }

    func testMixedLabelStepIsTheWeightedCrossEntropies() throws {
        let x = Tensor(shape: [3, 5], values: fixtureValues(15, seed: 4, scale: 1))
        let labels: [Int32] = [0, 2, 3]
        let partners: [Int32] = [2, 3, 0]
        let model = try linearModel()
        let w0 = model.parameters.map { $0.value.values }
        let s = model.forward(x, mode: .inference).values
        let ce = try DistillationLoss(temperature: 1, alpha: 0)
        let zeros = [Float](repeating: 0, count: 12)
        let (h1, g1) = try gradient(ce, s, zeros, labels.map(Int.init))
        let (h2, g2) = try gradient(ce, s, zeros, partners.map(Int.init))
        let step = TrainingStep(model: model, optimizer: SGD(learningRate: 1))
        let value = try labels.withUnsafeBufferPointer { y in
            try step.run(batch: x, labels: y, mixing: (partners, 0.75)).loss
        }
        XCTAssertEqual(value, 0.75 * h1 + 0.25 * h2, accuracy: 1e-5)
        assertUpdate(
            model, from: w0, x: x, gradient: (0..<12).map { 0.75 * g1[$0] + 0.25 * g2[$0] })
    }

    /// After one SGD step at rate 1: `W = W0 - g^T x`, `b = b0 - sum_n g`.
    func assertUpdate(
        _ model: Model, from w0: [[Float]], x: Tensor, gradient g: [Float],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        var weight = w0[0]
        var bias = w0[1]
        for c in 0..<4 {
            for n in 0..<3 {
                bias[c] -= g[n * 4 + c]
                for k in 0..<5 { weight[c * 5 + k] -= g[n * 4 + c] * x[n * 5 + k] }
            }
        }
        assertClose(
            model.parameters[0].value.values, weight.map(Double.init), rtol: 1e-4, atol: 1e-5,
            file: file, line: line)
        assertClose(
            model.parameters[1].value.values, bias.map(Double.init), rtol: 1e-4, atol: 1e-5,
            file: file, line: line)
    }
}
