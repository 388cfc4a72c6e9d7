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
/// get the same number of optimiser steps. The distilled student is trained at each of a few
/// temperatures and the one with the best validation accuracy is kept. Choices are made on the
/// validation split; the test set is only scored.
public struct FewLabelExperiment: Sendable {
    public var teacherArchitecture = "cnn:32,64/fc:256"
    public var teacherDropout: Float = 0.3
    public var teacherEpochs = 10
    /// The teacher's optimiser and learning rate: in the demo's few epochs Adam at 0.002 trains a
    /// more accurate teacher than SGD at 0.05, and its students do better (README's ablation).
    public var teacherOptimizer = TrainingOptions.OptimizerKind.adam
    public var teacherLearningRate: Float = 0.002
    /// Random translation of the teacher's training images, in pixels: in 10 epochs of Adam one
    /// pixel trains a more accurate teacher than the reference recipe's 2 (README's ablation).
    public var teacherJitter = 1
    public var studentArchitecture = "mlp:800,800"
    public var labels = 2000
    public var studentSteps = 10000
    /// The temperatures the distilled student is trained at; validation accuracy chooses one.
    /// T 2 to 4 suit these students best (the README's ablation); T 1 is the unsoftened control.
    public var temperatures: [Float] = [1, 2, 4]
    public var alpha: Float = 0.7
    /// The rows the hard term is a mean over: all of a batch's rows (each of the few labelled
    /// rows then weighs as much as an unlabelled one; averaged over the labelled rows alone, each
    /// of the 5 or so in a batch of 128 weighs 25 times as much, and the student does worse).
    public var hardReduction = DistillationLoss.HardReduction.all
    /// The students' learning rate (SGD with momentum 0.9; teacher and students both follow a
    /// cosine schedule).
    public var studentLearningRate: Float = 0.05
    public var seed: UInt64 = 0

    public init() {}

    /// The settings of `distill demo --quick`: a shorter teacher, shorter students, and T = 4 only.
    public static var quick: FewLabelExperiment {
        var e = FewLabelExperiment()
        e.teacherEpochs = 2
        e.studentSteps = 1500
        e.temperatures = [4]
        return e
    }

    /// The settings of `distill demo --patient`: the ablation's best recipe, a teacher trained
    /// with SGD for 30 epochs on images jittered by 2 pixels and students for 20,000 steps each
    /// (about 17 minutes on 2 cores).
    public static var patient: FewLabelExperiment {
        var e = FewLabelExperiment()
        e.teacherEpochs = 30
        e.teacherOptimizer = .sgd
        e.teacherLearningRate = 0.05
        e.teacherJitter = 2
        e.studentSteps = 20000
        return e
    }

    /// A text that changes whenever a setting that shapes the teacher changes.
    public var teacherKey: String {
        "\(teacherArchitecture) dropout \(teacherDropout) jitter \(teacherJitter) epochs \(teacherEpochs) \(teacherOptimizer) lr \(teacherLearningRate) seed \(seed)"
    }

    /// The teacher's training: `teacherEpochs` of `teacherOptimizer` at `teacherLearningRate`
    /// (cosine, batch 128) on images jittered by `teacherJitter` pixels.
    public var teacherOptions: TrainingOptions {
        var o = TrainingOptions()  // momentum 0.9 (for SGD), cosine schedule, batch 128
        o.seed = seed &+ 10
        o.epochs = teacherEpochs
        o.jitter = teacherJitter
        o.optimizer = teacherOptimizer
        o.learningRate = teacherLearningRate
        return o
    }

    /// Every student's training: `studentSteps` of SGD (momentum 0.9, cosine, batch 128) at
    /// `studentLearningRate`, without augmentation; the same for each, so the students differ in
    /// their loss alone.
    public var studentOptions: TrainingOptions {
        var o = TrainingOptions()  // SGD, momentum 0.9, cosine schedule, batch 128
        o.seed = seed &+ 20
        o.steps = studentSteps
        o.learningRate = studentLearningRate
        return o
    }

    /// Trains (or takes) the teacher.
    public func teacher(training: Examples, validation: Examples, progress: ProgressReporter?)
        throws -> (Model, Double)
    {
        var generator = SeededGenerator(seed: seed &+ 10)
        let model = try Model(
            spec: ArchitectureSpec(parsing: teacherArchitecture), inputShape: training.exampleShape,
            classes: training.classes, dropout: teacherDropout,
            normalization: training.normalization,
            generator: &generator)
        let summary = try Trainer(
            model: model, options: teacherOptions, training: training, validation: validation
        ).run(progress: progress)
        model.metadata = [
            "role": "teacher", "demo_teacher": teacherKey, "seed": "\(seed)",
            "validation_accuracy": summary.bestValidationAccuracy.map { String(format: "%.4f", $0) }
                ?? "",
        ]
        return (model, summary.seconds)
    }

    /// One trained student of the experiment.
    public struct Student {
        public let name: String
        public let model: Model
        public let summary: TrainingSummary
        /// The temperature it was distilled at; nil for the label-only student.
        public let temperature: Float?
    }

    /// Trains the students: one on the labelled few alone, and one distilled with the unlabelled
    /// rest at each of `temperatures`.
    public func students(
        teacher: Model, training: Examples, validation: Examples,
        progress: (String) -> ProgressReporter?
    ) throws -> [Student] {
        let few = training.subset(0..<min(labels, training.count))
        let transfer = training.keepingLabels(forFirst: labels)
        var results: [Student] = []
        // One teacher's cached logits do not depend on T: computed once for every temperature.
        let signal = try TeacherSignal.cache([teacher], on: transfer, temperature: 1)
        for temperature in [nil] + temperatures {
            var generator = SeededGenerator(seed: seed &+ 100)
            let model = try Model(
                spec: ArchitectureSpec(parsing: studentArchitecture),
                inputShape: training.exampleShape,
                classes: training.classes, normalization: training.normalization,
                generator: &generator)
            let summary: TrainingSummary
            if let temperature {
                let loss = try DistillationLoss(
                    temperature: temperature, alpha: alpha, hardReduction: hardReduction)
                summary = try Trainer(
                    model: model, options: studentOptions,
                    training: transfer,
                    validation: validation, teacher: signal, loss: loss
                ).run(progress: progress("distilled T \(temperature)"))
                model.metadata = [
                    "role": "student", "temperature": "\(temperature)", "alpha": "\(alpha)",
                    "hard_reduction": hardReduction.rawValue,
                    "labelled_examples": "\(labels)", "transfer_examples": "\(transfer.count)",
                    "seed": "\(seed)",
                ]
            } else {
                summary = try Trainer(
                    model: model, options: studentOptions,
                    training: few,
                    validation: validation
                ).run(progress: progress("labels only"))
                model.metadata = [
                    "role": "student baseline", "labelled_examples": "\(labels)", "seed": "\(seed)",
                ]
            }
            let name =
                temperature.map { "student, distilled (T \($0), alpha \(alpha))" }
                ?? "student, \(labels) labels only"
            results.append(
                Student(name: name, model: model, summary: summary, temperature: temperature))
        }
        return results
    }

    /// The distilled student with the best validation accuracy (ties: the first).
    public static func chosen(_ students: [Student]) -> Student? {
        students.filter { $0.temperature != nil }.max {
            ($0.summary.bestValidationAccuracy ?? 0) < ($1.summary.bestValidationAccuracy ?? 0)
        }
    }
}
