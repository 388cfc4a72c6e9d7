import DistillCore
import DistillData
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillTraining

final class TeacherSignalTests: XCTestCase {
    func rings(_ count: Int) -> Examples {
        let (x, y) = ringsDataset(count: count, seed: 3)
        return Examples(
            inputs: .floats(x), exampleShape: [8], labels: y, classes: 3, normalization: .identity)
    }

    /// Teacher rows that do not cover the training set, or have another class count, are refused
    /// before training, whatever form they take.
    func testRowsThatDoNotFitAreRefused() throws {
        var generator = SeededGenerator(seed: 1)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "mlp:4"), inputShape: [8], classes: 3,
            generator: &generator)
        let training = rings(100)
        let loss = try DistillationLoss(temperature: 2, alpha: 0.5)
        for rows: TeacherRows in [
            .values([Float](repeating: 0, count: 99 * 3), width: 3),
            .values([Float](repeating: 0, count: 100 * 4), width: 4),
        ] {
            XCTAssertThrowsError(
                try Trainer(
                    model: model, options: TrainingOptions(), training: training, validation: nil,
                    teacher: .rows(rows), loss: loss)
            ) {
                guard case TrainingError.incompatible = $0 else { return XCTFail("\($0)") }
            }
        }
        XCTAssertNoThrow(
            try Trainer(
                model: model, options: TrainingOptions(), training: training, validation: nil,
                teacher: .rows(.values([Float](repeating: 0, count: 300), width: 3)), loss: loss))
    }

    /// An ensemble's cached logits, `T log(mean_m softmax(t_m / T))`, give at temperature T the
    /// same loss and gradient as the members' logits given live (`TeacherOutput.ensembleLogits`).
    func testCachedEnsembleEqualsTheLiveEnsembleAtItsTemperature() throws {
        let (rows, classes) = (6, 5)
        let members = [
            fixtureValues(rows * classes, seed: 1, scale: 4),
            fixtureValues(rows * classes, seed: 2, scale: 4),
            fixtureValues(rows * classes, seed: 3, scale: 4),
        ]
        let student = fixtureValues(rows * classes, seed: 4, scale: 2)
        let labels: [Int32] = [0, 1, 2, 3, 4, -1]
        let loss = try DistillationLoss(temperature: 3, alpha: 0.6)
        let cached = try TeacherSignal.ensembleLogits(members, classes: classes, temperature: 3)
        func evaluate(_ teacher: TeacherOutput) throws -> (Float, [Float]) {
            var gradient = [Float](repeating: 0, count: rows * classes)
            let value = try student.withUnsafeBufferPointer { s in
                try labels.withUnsafeBufferPointer { y in
                    try gradient.withUnsafeMutableBufferPointer { g in
                        try loss.evaluate(
                            studentLogits: s, teacher: teacher, labels: y, rows: rows,
                            classes: classes, gradient: g)
                    }
                }
            }
            return (value.loss, gradient)
        }
        let (cachedLoss, cachedGradient) = try cached.withUnsafeBufferPointer {
            try evaluate(.logits($0))
        }
        let (liveLoss, liveGradient) = try members[0].withUnsafeBufferPointer { a in
            try members[1].withUnsafeBufferPointer { b in
                try members[2].withUnsafeBufferPointer { c in
                    try evaluate(.ensembleLogits([a, b, c]))
                }
            }
        }
        assertClose(cachedLoss, liveLoss, rtol: 1e-5)
        assertClose(cachedGradient, liveGradient, rtol: 1e-4, atol: 1e-6)
    }

    /// A row of non-finite logits counts as an error and enters no confusion cell or bin.
    func testNonFiniteRowIsAnError() {
        let report = EvaluationReport(
            logits: [2, 0, .nan, 0, 0, 3], labels: [0, 0, 1], classes: 2)
        XCTAssertEqual(report.count, 3)
        XCTAssertEqual(report.correct, 2)
        XCTAssertEqual(report.confusion.joined().reduce(0, +), 2)
        XCTAssertFalse(report.nll.isFinite)
    }
}
