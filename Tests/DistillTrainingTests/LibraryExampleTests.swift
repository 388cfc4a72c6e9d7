import DistillCore
import DistillData
import DistillFormats
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillTraining

/// The README's "Distilling from Swift" example, on the rings data instead of Fashion-MNIST and
/// with fewer steps: the same calls, in the same order.
final class LibraryExampleTests: XCTestCase {
    func testTheReadmeExampleRuns() throws {
        let dir = try makeTemporaryDirectory("distill-library")
        let (x, y) = ringsDataset(count: 1200, seed: 5)
        let (tx, ty) = ringsDataset(count: 200, seed: 6)
        try NPY.write(floats: x, shape: [1200, 8], to: dir + "/train_x.npy")
        try NPY.write(int64: y.map(Int64.init), shape: [1200], to: dir + "/train_y.npy")
        try NPY.write(floats: tx, shape: [200, 8], to: dir + "/test_x.npy")
        try NPY.write(int64: ty.map(Int64.init), shape: [200], to: dir + "/test_y.npy")
        // A teacher, trained on every label.
        var teacherGenerator = SeededGenerator(seed: 1)
        let trainedTeacher = try Model(
            spec: ArchitectureSpec(parsing: "mlp:64,64"), inputShape: [8], classes: 3,
            generator: &teacherGenerator)
        var teacherOptions = TrainingOptions()
        teacherOptions.epochs = 20
        teacherOptions.batchSize = 64
        let all = try DataDirectory.load(dir).training.splittingValidation(.count(200))
        _ = try Trainer(
            model: trainedTeacher, options: teacherOptions, training: all.training,
            validation: all.validation
        )
        .run()
        try trainedTeacher.save(to: dir + "/teacher.safetensors")

        // The README's example (the floating-point mode restored after it, for the other tests).
        let flushed = FloatingPointMode.flushesSubnormals
        defer { FloatingPointMode.flushSubnormalsToZero(flushed) }
        FloatingPointMode.flushSubnormalsToZero()
        let data = try DataDirectory.load(resolving: dir, environment: [:])
        let (training, validation) = try data.training.splittingValidation(.automatic)
        var generator = SeededGenerator(seed: 0)
        let teacher = try Model.load(from: dir + "/teacher.safetensors")
        try teacher.check(fits: training)
        let student = try Model(
            spec: ArchitectureSpec(parsing: "mlp:16"), inputShape: training.exampleShape,
            classes: training.classes, normalization: training.normalization, generator: &generator)
        var options = TrainingOptions()
        options.steps = 300
        let trainer = try Trainer(
            model: student, options: options, training: training.keepingLabels(forFirst: 50),
            validation: validation,
            teacher: try .cache([teacher], on: training, temperature: 4),
            loss: try DistillationLoss(temperature: 4, alpha: 0.7))
        let summary = try trainer.run()
        try student.save(to: dir + "/student.safetensors")

        XCTAssertGreaterThan(try XCTUnwrap(summary.bestValidationAccuracy), 0.8)
        XCTAssertEqual(
            try Model.load(from: dir + "/student.safetensors").parameterCount,
            student.parameterCount)
    }
}
