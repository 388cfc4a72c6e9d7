import DistillCore
import DistillData
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillTraining

final class TemperaturePolicyTests: XCTestCase {
    /// The one place the combination rules live: what a learned temperature, standardisation,
    /// an ensemble and top-k rows each refuse.
    func testCombinationRules() throws {
        let kl = try DistillationLoss(temperature: 4, alpha: 0.7)
        let standardized = try DistillationLoss(
            temperature: 4, alpha: 0.7, logitStandardization: true)
        let mse = try DistillationLoss(temperature: 4, alpha: 0.7, objective: .mse)
        let learned = TemperatureMethod.learned(learningRate: 0.05)
        XCTAssertNoThrow(try learned.check(loss: kl, teachers: 1, topK: nil))
        XCTAssertNoThrow(try TemperatureMethod.fixed.check(loss: kl, teachers: 3, topK: nil))
        XCTAssertNoThrow(
            try TemperatureMethod.fixed.check(loss: kl, teachers: 1, topK: .renormalise))
        XCTAssertNoThrow(try learned.check(loss: kl, teachers: 1, topK: .renormalise))
        let refused: [(TemperatureMethod, DistillationLoss, Int, TopKMass?, String)] = [
            (learned, standardized, 1, nil, "--adaptive-temperature ctkd"),
            (learned, mse, 1, nil, "--adaptive-temperature ctkd"),
            (learned, kl, 2, nil, "--adaptive-temperature ctkd"),
            (learned, kl, 1, .rest, "--top-k-mass renormalise"),
            (.fixed, standardized, 2, nil, "--logit-standardization"),
            (.fixed, mse, 2, nil, "--objective mse takes a single teacher"),
            (.fixed, mse, 1, .renormalise, "--teacher-top-k"),
            (.fixed, standardized, 1, .rest, "--teacher-top-k"),
        ]
        for (method, loss, teachers, topK, expected) in refused {
            XCTAssertThrowsError(try method.check(loss: loss, teachers: teachers, topK: topK)) {
                XCTAssertTrue("\($0)".contains(expected), "'\($0)' should mention '\(expected)'")
            }
        }
    }

    /// A warm-up of the soft term takes an objective whose soft term has a weight and a
    /// temperature that is not learned; its factor
    /// climbs by 1/N a step to 1 and stays there.
    func testSoftWarmupRuleAndFactor() throws {
        let kl = try DistillationLoss(temperature: 4, alpha: 0.7)
        let dkd = try DistillationLoss(temperature: 4, alpha: 0.7, objective: .dkd)
        XCTAssertNoThrow(
            try TemperatureMethod.fixed.check(loss: kl, teachers: 1, topK: nil, softWarmup: 10))
        XCTAssertNoThrow(
            try TemperatureMethod.fixed.check(loss: dkd, teachers: 1, topK: nil, softWarmup: 10))
        for objective in [DistillationLoss.Objective.hard, .mse] {
            let loss = try DistillationLoss(temperature: 4, alpha: 0.7, objective: objective)
            XCTAssertNoThrow(try TemperatureMethod.fixed.check(loss: loss, teachers: 1, topK: nil))
            XCTAssertThrowsError(
                try TemperatureMethod.fixed.check(
                    loss: loss, teachers: 1, topK: nil, softWarmup: 10)
            ) { XCTAssertTrue("\($0)".contains("--soft-warmup"), "\($0)") }
        }
        XCTAssertThrowsError(
            try TemperatureMethod.learned(learningRate: 0.05).check(
                loss: kl, teachers: 1, topK: nil, softWarmup: 10)
        ) { XCTAssertTrue("\($0)".contains("--adaptive-temperature ctkd"), "\($0)") }
        var options = TrainingOptions()
        XCTAssertEqual(options.softWarmupFactor(at: 0), 1)
        options.softWarmupSteps = 4
        XCTAssertEqual(
            (0..<6).map { options.softWarmupFactor(at: $0) }, [0.25, 0.5, 0.75, 1, 1, 1])
        options.softWarmupSteps = -1
        XCTAssertThrowsError(try options.validate())
    }

    /// The trainer applies the warm-up: one step with a 4-step warm-up moves the student exactly
    /// as one step with the soft term scaled by 1/4 (soft term alone, alpha 1).
    func testTrainerRampsTheSoftTerm() throws {
        let (x, y) = ringsDataset(count: 64, seed: 3)
        let training = Examples(
            inputs: .floats(x), exampleShape: [8], labels: y, classes: 3, normalization: .identity)
        let teacher = TeacherRows.values(fixtureValues(64 * 3, seed: 9, scale: 3), width: 3)
        let loss = try DistillationLoss(temperature: 2, alpha: 1)
        func oneStep(softWarmup: Int, softScale: Float) throws -> [Float] {
            var generator = SeededGenerator(seed: 1)
            let model = try Model(
                spec: ArchitectureSpec(parsing: "mlp:4"), inputShape: [8], classes: 3,
                generator: &generator)
            var options = TrainingOptions()
            (options.steps, options.batchSize, options.softWarmupSteps) = (1, 64, softWarmup)
            options.schedule = .constant
            var scaled = loss
            scaled.softScale = softScale
            _ = try Trainer(
                model: model, options: options, training: training, validation: nil,
                teacher: .rows(teacher), loss: scaled
            ).run(progress: nil)
            return model.parameters.flatMap { Array($0.value.buffer) }
        }
        let warm = try oneStep(softWarmup: 4, softScale: 1)
        XCTAssertEqual(warm, try oneStep(softWarmup: 0, softScale: 0.25))
        XCTAssertNotEqual(warm, try oneStep(softWarmup: 0, softScale: 1))
    }

    /// Each policy's loss at a step: fixed, scheduled (the schedule's T), learned (from T = 11,
    /// moving after a step it observes, and kept through its checkpoint value).
    func testPoliciesSupplyEachStepsLoss() throws {
        let base = try DistillationLoss(temperature: 4, alpha: 0.7)
        XCTAssertEqual(
            try TemperatureMethod.fixed.makePolicy(loss: base).loss(at: 5, of: 10).temperature, 4)
        let cosine = TemperatureSchedule(shape: .cosine, initial: 4, final: 1)
        let scheduled = TemperatureMethod.scheduled(cosine).makePolicy(loss: base)
        XCTAssertEqual(try scheduled.loss(at: 0, of: 11).temperature, 4)
        XCTAssertEqual(try scheduled.loss(at: 10, of: 11).temperature, 1)
        XCTAssertEqual(try scheduled.loss(at: 5, of: 11).alpha, 0.7)
        let learned = TemperatureMethod.learned(learningRate: 1).makePolicy(loss: base)
        assertClose(try learned.loss(at: 0, of: 10).temperature, 11, rtol: 1e-6)
        let student: [Float] = [2, 0, -1, 0.5, 0.5, 0]
        let teacher: [Float] = [0, 3, 0, 1, -2, 0]
        try student.withUnsafeBufferPointer { s in
            try teacher.withUnsafeBufferPointer { t in
                try learned.observe(
                    studentLogits: s, teacher: .logits(t), rows: 2, classes: 3, hadLabels: true,
                    step: 5, of: 10)
            }
        }
        let moved = try learned.loss(at: 6, of: 10).temperature
        XCTAssertNotEqual(moved, 11)
        XCTAssertEqual(learned.learnedTemperature, moved)
        let resumed = TemperatureMethod.learned(learningRate: 1).makePolicy(loss: base)
        resumed.checkpointValue = learned.checkpointValue
        XCTAssertEqual(try resumed.loss(at: 6, of: 10).temperature, moved)
    }
}
