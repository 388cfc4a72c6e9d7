import DistillCore
import DistillData
import DistillLosses
import DistillNN

/// The demo's experiment: where distillation pays on Fashion-MNIST.
///
/// A CNN teacher trained on every labelled training image; a small MLP student that has labels
/// for only the first `labels` images, trained (1) on those labels alone and (2) distilled with
/// the teacher's soft targets on the whole training set, the other images serving as an
/// unlabelled transfer set (soft targets only there; alpha where a label exists). Both students
/// get the same number of optimiser steps. Choices are made on the validation split; the test set
/// is only scored.
public struct FewLabelExperiment: Sendable {
    public var teacherArchitecture = "cnn:32,64/fc:256"
    public var teacherDropout: Float = 0.3
    public var teacherEpochs = 8
    /// Random translation of the teacher's training images, in pixels (the reference recipe's 2).
    public var teacherJitter = 2
    public var studentArchitecture = "mlp:800,800"
    public var labels = 2000
    public var studentSteps = 6000
    public var temperature: Float = 4
    public var alpha: Float = 0.7
    public var learningRate: Float = 0.05
    public var seed: UInt64 = 0

    public init() {}

    /// The settings of `distill demo --quick`: a shorter teacher and shorter students.
    public static var quick: FewLabelExperiment {
        var e = FewLabelExperiment()
        e.teacherEpochs = 2
        e.studentSteps = 1500
        return e
    }

    /// A text that changes whenever a setting that shapes the teacher changes.
    public var teacherKey: String {
        "\(teacherArchitecture) dropout \(teacherDropout) jitter \(teacherJitter) epochs \(teacherEpochs) lr \(learningRate) seed \(seed)"
    }

    func options(epochs: Int? = nil, steps: Int? = nil, jitter: Int = 0, seed: UInt64) -> TrainingOptions {
        var o = TrainingOptions()
        o.jitter = jitter
        if let epochs { o.epochs = epochs }
        o.steps = steps
        o.learningRate = learningRate
        o.momentum = 0.9
        o.schedule = .cosine
        o.seed = seed
        return o
    }

    /// Trains (or takes) the teacher.
    public func teacher(training: Examples, validation: Examples, progress: ProgressReporter?) throws -> (Model, Double) {
        var generator = SeededGenerator(seed: seed &+ 10)
        let model = try Model(spec: ArchitectureSpec(parsing: teacherArchitecture), inputShape: training.exampleShape,
                              classes: training.classes, dropout: teacherDropout, normalization: training.normalization,
                              generator: &generator)
        let summary = try Trainer(model: model, options: options(epochs: teacherEpochs, jitter: teacherJitter, seed: seed &+ 10),
                                  training: training, validation: validation).run(progress: progress)
        model.metadata = ["role": "teacher", "demo_teacher": teacherKey, "seed": "\(seed)",
                          "validation_accuracy": summary.bestValidationAccuracy.map { String(format: "%.4f", $0) } ?? ""]
        return (model, summary.seconds)
    }

    /// Trains the two students: on the labelled few alone, and distilled with the unlabelled rest.
    public func students(teacher: Model, training: Examples, validation: Examples,
                         progress: (String) -> ProgressReporter?) throws -> [(name: String, model: Model, seconds: Double)] {
        let few = training.subset(0..<min(labels, training.count))
        let transfer = training.keepingLabels(forFirst: labels)
        var results: [(String, Model, Double)] = []
        for (name, distilled) in [("student, \(labels) labels only", false), ("student, distilled (T \(temperature), alpha \(alpha))", true)] {
            var generator = SeededGenerator(seed: seed &+ 100)
            let model = try Model(spec: ArchitectureSpec(parsing: studentArchitecture), inputShape: training.exampleShape,
                                  classes: training.classes, normalization: training.normalization, generator: &generator)
            let start = now()
            if distilled {
                let signal = try TeacherSignal.cache([teacher], on: transfer, temperature: temperature)
                let loss = try DistillationLoss(temperature: temperature, alpha: alpha)
                _ = try Trainer(model: model, options: options(steps: studentSteps, seed: seed &+ 20), training: transfer,
                                validation: validation, teacher: signal, loss: loss).run(progress: progress("distilled"))
                model.metadata = ["role": "student", "temperature": "\(temperature)", "alpha": "\(alpha)",
                                  "labelled_examples": "\(labels)", "transfer_examples": "\(transfer.count)", "seed": "\(seed)"]
            } else {
                _ = try Trainer(model: model, options: options(steps: studentSteps, seed: seed &+ 20), training: few,
                                validation: validation).run(progress: progress("labels only"))
                model.metadata = ["role": "student baseline", "labelled_examples": "\(labels)", "seed": "\(seed)"]
            }
            results.append((name, model, now() - start))
        }
        return results
    }
}

