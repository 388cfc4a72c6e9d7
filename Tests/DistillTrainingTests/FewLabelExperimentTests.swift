import XCTest

@testable import DistillTraining

/// The demo's settings: what reaches the trainer, and the key that decides whether a teacher
/// already on disk is reused.
final class FewLabelExperimentTests: XCTestCase {
    /// The options `teacher(...)` and `students(...)` train with carry the experiment's settings.
    func testTheTeacherTrainsWithItsOwnOptimiserAndTheStudentsWithSGD() {
        var e = FewLabelExperiment()
        e.seed = 3
        let teacher = e.teacherOptions
        XCTAssertEqual(teacher.optimizer, .adam)
        XCTAssertEqual(teacher.learningRate, e.teacherLearningRate)
        XCTAssertEqual(teacher.epochs, e.teacherEpochs)
        XCTAssertNil(teacher.steps)
        XCTAssertEqual(teacher.jitter, e.teacherJitter)
        XCTAssertEqual(teacher.seed, 13)
        let student = e.studentOptions
        XCTAssertEqual(student.optimizer, .sgd)
        XCTAssertEqual(student.momentum, 0.9)
        XCTAssertEqual(student.learningRate, e.studentLearningRate)
        XCTAssertEqual(student.steps, e.studentSteps)
        XCTAssertFalse(student.augments)
        XCTAssertEqual(student.seed, 23)
        XCTAssertEqual(FewLabelExperiment.patient.teacherOptions.optimizer, .sgd)
        XCTAssertEqual(FewLabelExperiment.patient.teacherOptions.learningRate, 0.05)
        // --patient keeps the ablation's 30-epoch SGD teacher, on images jittered by 2 pixels,
        // whatever the demo's own teacher uses.
        XCTAssertEqual(FewLabelExperiment.patient.teacherOptions.jitter, 2)
        XCTAssertEqual(FewLabelExperiment.patient.teacherOptions.epochs, 30)
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
