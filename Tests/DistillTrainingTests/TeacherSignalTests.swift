import DistillCore
import DistillData
import DistillLosses
import DistillNN
@testable import DistillTraining
import DistillTestSupport
import XCTest

final class TeacherSignalTests: XCTestCase {
    func rings(_ count: Int) -> Examples {
        let (x, y) = ringsDataset(count: count, seed: 3)
        return Examples(inputs: .floats(x), exampleShape: [8], labels: y, classes: 3, normalization: .identity)
    }

    /// Teacher rows that do not cover the training set, or have another class count, are refused
    /// before training, whatever form they take.
    func testRowsThatDoNotFitAreRefused() throws {
        var generator = SeededGenerator(seed: 1)
        let model = try Model(spec: ArchitectureSpec(parsing: "mlp:4"), inputShape: [8], classes: 3, generator: &generator)
        let training = rings(100)
        let loss = try DistillationLoss(temperature: 2, alpha: 0.5)
        for rows: TeacherRows in [.values([Float](repeating: 0, count: 99 * 3), width: 3), .values([Float](repeating: 0, count: 100 * 4), width: 4)] {
            XCTAssertThrowsError(try Trainer(model: model, options: TrainingOptions(), training: training, validation: nil,
                                             teacher: .rows(rows), loss: loss)) {
                guard case TrainingError.incompatible = $0 else { return XCTFail("\($0)") }
            }
        }
        XCTAssertNoThrow(try Trainer(model: model, options: TrainingOptions(), training: training, validation: nil,
                                     teacher: .rows(.values([Float](repeating: 0, count: 300), width: 3)), loss: loss))
    }

    /// A row of non-finite logits counts as an error and enters no confusion cell or bin.
    func testNonFiniteRowIsAnError() {
        let report = EvaluationReport(logits: [2, 0, .nan, 0, 0, 3], labels: [0, 0, 1], classes: 2)
        XCTAssertEqual(report.count, 3)
        XCTAssertEqual(report.correct, 2)
        XCTAssertEqual(report.confusion.joined().reduce(0, +), 2)
        XCTAssertFalse(report.nll.isFinite)
    }
}
