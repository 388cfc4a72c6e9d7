import DistillCore
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillTraining

final class EndToEndTests: XCTestCase {
    func accuracy(_ model: Model, _ x: [Float], _ y: [Int32]) -> Double {
        let logits = model.logits(Tensor(shape: [y.count, 8], values: x))
        var correct = 0
        for r in 0..<y.count {
            var best = 0
            for c in 1..<3 where logits[r * 3 + c] > logits[r * 3 + best] { best = c }
            if best == Int(y[r]) { correct += 1 }
        }
        return Double(correct) / Double(y.count)
    }

    /// An MLP learns the rings to high accuracy on held-out points, with SGD + momentum.
    func testMLPLearnsRings() throws {
        let train = ringsDataset(count: 2048, seed: 1)
        let test = ringsDataset(count: 1000, seed: 2)
        var generator = SeededGenerator(seed: 7)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "mlp:32,32"), inputShape: [8], classes: 3,
            generator: &generator)
        let step = TrainingStep(model: model, optimizer: SGD(learningRate: 0.05, momentum: 0.9))
        XCTAssertLessThan(accuracy(model, test.x, test.y), 0.6)
        let batchSize = 64
        for _ in 0..<60 {
            for start in stride(from: 0, to: 2048, by: batchSize) {
                let batch = Tensor(
                    shape: [batchSize, 8],
                    values: Array(train.x[(start * 8)..<((start + batchSize) * 8)]))
                let labels = Array(train.y[start..<(start + batchSize)])
                try labels.withUnsafeBufferPointer { _ = try step.run(batch: batch, labels: $0) }
            }
        }
        XCTAssertGreaterThan(accuracy(model, test.x, test.y), 0.95)
    }

    /// A training step reuses its buffers: after a first step, further steps with the same batch
    /// size leave every activation, gradient and optimizer buffer in place.
    func testSteadyStateStepsKeepTheirBuffers() throws {
        var generator = SeededGenerator(seed: 3)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "cnn:2/fc:4"), inputShape: [1, 6, 6], classes: 3,
            dropout: 0.5, generator: &generator)
        let step = TrainingStep(model: model, optimizer: Adam())
        let batch = Tensor(shape: [4, 1, 6, 6], values: fixtureValues(144, seed: 1))
        let labels: [Int32] = [0, 1, 2, 1]
        try labels.withUnsafeBufferPointer { _ = try step.run(batch: batch, labels: $0) }
        let first = try labels.withUnsafeBufferPointer {
            try step.run(batch: batch, labels: $0).logits
        }
        let pointers = model.parameters.map { ($0.value.pointer, $0.gradient!.pointer) }
        try labels.withUnsafeBufferPointer { _ = try step.run(batch: batch, labels: $0) }
        let second = try labels.withUnsafeBufferPointer {
            try step.run(batch: batch, labels: $0).logits
        }
        XCTAssertTrue(first.storage === second.storage)
        XCTAssertEqual(first.pointer, second.pointer)
        for (p, (value, gradient)) in zip(model.parameters, pointers) {
            XCTAssertEqual(p.value.pointer, value)
            XCTAssertEqual(p.gradient!.pointer, gradient)
        }
    }

    /// SGD with plain momentum under `TrainingStep` takes the gradients straight into its momentum
    /// buffers; four steps give the same parameters and velocities as zeroing, back-propagating into
    /// the gradients and stepping (models from the same seeds), to rounding: `0.9 v` meets the
    /// gradient's partial sums in the order the BLAS kernel adds them to the buffer (bit for bit
    /// with OpenBLAS's Prescott and Haswell kernels for the MLP, whose 16 rows are one block; not
    /// with its SkylakeX kernel, nor for the CNN's 16 x 30 positions in two blocks). With weight decay or Nesterov the gradients
    /// stay readable after a step.
    func testMomentumAccumulatedInPlaceEqualsTheGradientPath() throws {
        for (spec, shape) in [("mlp:24,16", [12]), ("cnn:3/fc:8", [1, 6, 5])] {
            func make() throws -> Model {
                var generator = SeededGenerator(seed: 11)
                return try Model(
                    spec: ArchitectureSpec(parsing: spec), inputShape: shape, classes: 3,
                    dropout: 0.3,
                    generator: &generator)
            }
            let fused = try make()
            let plain = try make()
            let fusedSGD = SGD(learningRate: 0.1, momentum: 0.9)
            let plainSGD = SGD(learningRate: 0.1, momentum: 0.9)
            let step = TrainingStep(model: fused, optimizer: fusedSGD)
            let perExample = shape.reduce(1, *)
            let gradient = Tensor(zeros: [16, 3])
            for round in 0..<4 {
                let batch = Tensor(
                    shape: [16] + shape,
                    values: fixtureValues(16 * perExample, seed: UInt64(round + 1)))
                let labels = (0..<16).map { Int32(($0 + round) % 3) }
                try labels.withUnsafeBufferPointer { _ = try step.run(batch: batch, labels: $0) }
                let logits = plain.forward(batch, mode: .training)
                _ = try labels.withUnsafeBufferPointer {
                    try crossEntropy(
                        logits: UnsafeBufferPointer(logits.buffer), labels: $0, rows: 16,
                        classes: 3,
                        ignoreLabel: -1, gradient: gradient.buffer)
                }
                plain.zeroGradients()
                plain.backward(gradient)
                plainSGD.step(plain.parameters)
            }
            for (index, (a, b)) in zip(fused.parameters, plain.parameters).enumerated() {
                let (v, w) = (fusedSGD.velocities[index].values, plainSGD.velocities[index].values)
                assertClose(
                    a.value.values, b.value.values, rtol: 1e-5, atol: 1e-6,
                    "\(spec), parameter \(index)")
                assertClose(v, w, rtol: 1e-5, atol: 1e-6, "\(spec), velocity \(index)")
            }
        }
        for optimizer in [
            SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01),
            SGD(learningRate: 0.1, momentum: 0.9, nesterov: true),
        ] {
            var generator = SeededGenerator(seed: 2)
            let model = try Model(
                spec: ArchitectureSpec(parsing: "mlp:8"), inputShape: [4], classes: 2,
                generator: &generator)
            let labels: [Int32] = [0, 1]
            try labels.withUnsafeBufferPointer {
                _ = try TrainingStep(model: model, optimizer: optimizer).run(
                    batch: Tensor(shape: [2, 4], values: fixtureValues(8, seed: 3)), labels: $0)
            }
            XCTAssertTrue(model.parameters[0].gradient!.values.contains { $0 != 0 })
        }
    }

    /// The step's clock: every step counted, each phase positive (a phase never timed stays 0),
    /// together no more than the wall time around the steps; after a reset it sums the new steps
    /// only.
    func testStepTimingAddsUpThePhases() throws {
        var generator = SeededGenerator(seed: 5)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "mlp:64"), inputShape: [8], classes: 3,
            generator: &generator)
        let step = TrainingStep(model: model, optimizer: SGD(learningRate: 0.01))
        let batch = Tensor(shape: [32, 8], values: fixtureValues(256, seed: 2))
        let labels = (0..<32).map { Int32($0 % 3) }
        let start = monotonicSeconds()
        for _ in 0..<5 {
            try labels.withUnsafeBufferPointer { _ = try step.run(batch: batch, labels: $0) }
        }
        let wall = monotonicSeconds() - start
        let t = step.timing
        XCTAssertEqual(t.steps, 5)
        for (name, seconds) in [
            ("forward", t.forward), ("loss", t.loss), ("backward", t.backward),
            ("update", t.update),
        ] {
            XCTAssertGreaterThan(seconds, 0, name)
        }
        XCTAssertLessThanOrEqual(t.forward + t.loss + t.backward + t.update, wall)
        // After a reset the step counts from zero again.
        step.timing = StepTiming()
        try labels.withUnsafeBufferPointer { _ = try step.run(batch: batch, labels: $0) }
        XCTAssertEqual(step.timing.steps, 1)
        XCTAssertLessThanOrEqual(
            step.timing.forward + step.timing.loss + step.timing.backward + step.timing.update,
            monotonicSeconds() - start - wall)
    }

    /// Distilling on the same problem: soft targets from a trained teacher at T = 4 train a
    /// student with no labels at all (alpha = 1).
    func testSoftOnlyDistillationTransfersTheTask() throws {
        let train = ringsDataset(count: 2048, seed: 1)
        let test = ringsDataset(count: 1000, seed: 2)
        var generator = SeededGenerator(seed: 11)
        let teacher = try Model(
            spec: ArchitectureSpec(parsing: "mlp:64,64"), inputShape: [8], classes: 3,
            generator: &generator)
        let student = try Model(
            spec: ArchitectureSpec(parsing: "mlp:16"), inputShape: [8], classes: 3,
            generator: &generator)
        let teacherStep = TrainingStep(
            model: teacher, optimizer: SGD(learningRate: 0.05, momentum: 0.9))
        let studentStep = TrainingStep(model: student, optimizer: Adam(learningRate: 0.01))
        let loss = try DistillationLoss(temperature: 4, alpha: 1)
        let batchSize = 64
        for epoch in 0..<80 {
            for start in stride(from: 0, to: 2048, by: batchSize) {
                let batch = Tensor(
                    shape: [batchSize, 8],
                    values: Array(train.x[(start * 8)..<((start + batchSize) * 8)]))
                let labels = Array(train.y[start..<(start + batchSize)])
                if epoch < 40 {
                    try labels.withUnsafeBufferPointer {
                        _ = try teacherStep.run(batch: batch, labels: $0)
                    }
                } else {
                    let t = teacher.logits(batch)
                    try t.buffer.withMemoryRebound(to: Float.self) { tb in
                        _ = try studentStep.run(
                            batch: batch, teacher: .logits(UnsafeBufferPointer(tb)), labels: nil,
                            loss: loss)
                    }
                }
            }
        }
        XCTAssertGreaterThan(accuracy(teacher, test.x, test.y), 0.95)
        XCTAssertGreaterThan(accuracy(student, test.x, test.y), 0.9)
    }
}

final class TemperatureScheduleTests: XCTestCase {
    func testBoundariesAndMidpoints() {
        let linear = TemperatureSchedule(shape: .linear, initial: 8, final: 2)
        XCTAssertEqual(linear.temperature(at: 0, of: 101), 8)
        XCTAssertEqual(linear.temperature(at: 50, of: 101), 5, accuracy: 1e-6)
        XCTAssertEqual(linear.temperature(at: 100, of: 101), 2)
        XCTAssertEqual(linear.temperature(at: 500, of: 101), 2)
        let cosine = TemperatureSchedule(shape: .cosine, initial: 1, final: 21)
        XCTAssertEqual(cosine.temperature(at: 0, of: 11), 1, accuracy: 1e-6)
        XCTAssertEqual(cosine.temperature(at: 5, of: 11), 11, accuracy: 1e-5)
        XCTAssertEqual(cosine.temperature(at: 10, of: 11), 21, accuracy: 1e-6)
        XCTAssertEqual(cosine.temperature(at: 0, of: 1), 21)
    }
}

final class AdaptiveTemperatureTests: XCTestCase {
    func testCurriculumAndReversedStep() {
        XCTAssertEqual(AdaptiveTemperature.lambda(at: 0, of: 100), 0)
        XCTAssertEqual(AdaptiveTemperature.lambda(at: 25, of: 100), 0.5, accuracy: 1e-12)
        XCTAssertEqual(AdaptiveTemperature.lambda(at: 50, of: 100), 1, accuracy: 1e-12)
        XCTAssertEqual(AdaptiveTemperature.lambda(at: 99, of: 100), 1, accuracy: 1e-12)
        var t = AdaptiveTemperature(learningRate: 0.1)
        XCTAssertEqual(t.temperature, 11, accuracy: 1e-5)
        t.update(softGradient: 2, alpha: 1, step: 0, of: 100)  // lambda 0: no change
        XCTAssertEqual(t.theta, 0)
        // the loss grows with T: T rises (gradient ascent)
        t.update(softGradient: 2, alpha: 1, step: 60, of: 100)
        XCTAssertEqual(t.theta, 0.1 * 1 * 1 * 2 * 5, accuracy: 1e-12)  // dT/dtheta = 20 * 0.25
        t.update(softGradient: -50, alpha: 1, step: 60, of: 100)
        XCTAssertLessThan(t.theta, 0)
        XCTAssertGreaterThan(AdaptiveTemperature(theta: -40, learningRate: 1).temperature, 1 - 1e-6)
        XCTAssertLessThan(AdaptiveTemperature(theta: 40, learningRate: 1).temperature, 21 + 1e-5)
    }
}
