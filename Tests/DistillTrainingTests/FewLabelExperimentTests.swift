import XCTest

@testable import DistillTraining

/// The demo's settings: what reaches the trainer, and the key that decides whether a teacher
/// already on disk is reused.
final class FewLabelExperimentTests: XCTestCase {
    func testTheTeacherTrainsWithItsOwnOptimiserAndTheStudentsWithSGD() {
        let e = FewLabelExperiment()
        let teacher = e.options(
            epochs: e.teacherEpochs, jitter: e.teacherJitter, optimizer: e.teacherOptimizer,
            learningRate: e.teacherLearningRate, seed: 10)
        XCTAssertEqual(teacher.optimizer, e.teacherOptimizer)
        XCTAssertEqual(teacher.learningRate, e.teacherLearningRate)
        XCTAssertEqual(teacher.epochs, e.teacherEpochs)
        XCTAssertEqual(teacher.jitter, e.teacherJitter)
        let student = e.options(steps: e.studentSteps, seed: 20)
        XCTAssertEqual(student.optimizer, .sgd)
        XCTAssertEqual(student.learningRate, e.studentLearningRate)
        XCTAssertEqual(student.steps, e.studentSteps)
        XCTAssertEqual(student.jitter, 0)
    }

    /// A teacher trained with another optimiser or learning rate is not reused.
    func testTheTeacherKeyChangesWithEverySettingThatShapesTheTeacher() {
        let base = FewLabelExperiment()
        var variants: [FewLabelExperiment] = []
        for change in [
            { (e: inout FewLabelExperiment) in e.teacherOptimizer = .sgd },
            { $0.teacherLearningRate = 0.001 }, { $0.teacherEpochs += 1 },
            { $0.teacherDropout = 0.1 }, { $0.teacherJitter = 0 }, { $0.seed = 1 },
            { $0.teacherArchitecture = "cnn:16/fc:32" },
        ] {
            var e = base
            change(&e)
            variants.append(e)
        }
        let keys = Set([base.teacherKey] + variants.map(\.teacherKey))
        XCTAssertEqual(keys.count, variants.count + 1)
        XCTAssertEqual(FewLabelExperiment.patient.teacherOptimizer, .sgd)
        XCTAssertNotEqual(FewLabelExperiment.patient.teacherKey, base.teacherKey)
    }
}
