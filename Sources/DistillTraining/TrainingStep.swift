import DistillCore
import DistillLosses
import DistillNN

/// One optimisation step of a model: forward (training mode), loss and its gradient with respect
/// to the logits, backward, optimizer update.
///
/// A model with transformer blocks runs the forward and backward passes of a batch's examples in
/// parts, one per worker (`processorCount`), on replicas of the model that share its weights
/// (`BatchSplit`; `defaultParts(for:)`); the loss still sees the whole batch at once. The
/// optimizer is told before the backward pass (`prepareForBackward`), so SGD with plain momentum
/// takes the gradients (the parts' summed into the model's) straight into its momentum buffers:
/// after such a step the parameters' `gradient` is nil (read gradients with
/// `model.zeroGradients()` and `model.backward(_:)` yourself).
///
/// The step owns the logits-gradient buffer and the model (and its replicas) own their
/// activations, so once a batch size has been seen a step allocates no tensor.
public final class TrainingStep {
    public let model: Model
    public let optimizer: any Optimizer
    private var logitsGradient = Tensor(zeros: [0])
    private var mixGradient = Tensor(zeros: [0])
    private let parameters: [Parameter]
    /// The batch's parts (also what a text validation runs the model through, on the same
    /// replicas and buffers).
    let split: BatchSplit
    /// Where the steps' time went, summed since the step was made or `timing` last reset.
    public var timing = StepTiming()

    /// - Parameter parts: the most parts a batch's examples are split into, each on a core of its
    ///   own (1: no split); `defaultParts(for: model)` when nil.
    public init(model: Model, optimizer: any Optimizer, parts: Int? = nil) {
        self.model = model
        self.optimizer = optimizer
        self.parameters = model.parameters
        self.split = BatchSplit(
            model: model, maximumParts: parts ?? TrainingStep.defaultParts(for: model))
    }

    /// Into how many parts a step splits a batch of `model`'s by default: one per worker
    /// (`processorCount`) for a model with transformer blocks, whose many small products and
    /// passes run faster each on one core for a part of the examples than each split over the
    /// cores; 1 for the others (dense and convolutional networks, whose large products BLAS
    /// splits well; `DistillBenchmarks training --parts 2` times them split).
    public static func defaultParts(for model: Model) -> Int {
        model.network.layers.contains { $0 is TransformerBlock } ? processorCount : 1
    }

    /// A step on labels alone (cross-entropy). Rows labelled `Examples.noLabel` (-1) count for
    /// nothing.
    /// - Parameters:
    ///   - batch: `[N] + model.inputShape` (any shape with that many elements per example).
    ///   - labels: `[N]` class indices or -1.
    ///   - mixing: for a mixup batch, each row's partner's label and the batch's `lambda`: the loss
    ///     is `lambda CE(s, y) + (1 - lambda) CE(s, y_partner)`.
    /// - Returns: the mean cross-entropy of the batch before the update, and the logits.
    @discardableResult
    public func run(
        batch: Tensor, labels: UnsafeBufferPointer<Int32>,
        mixing: (partnerLabels: [Int32], lambda: Float)? = nil
    ) throws -> (loss: Float, logits: Tensor) {
        let (logits, clock) = forward(batch)
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        var loss = try crossEntropy(
            logits: UnsafeBufferPointer(logits.buffer), labels: labels, rows: rows,
            classes: classes, ignoreLabel: -1, gradient: logitsGradient.buffer)
        if let (partners, lambda) = mixing {
            let second = try partners.withUnsafeBufferPointer { y in
                try crossEntropy(
                    logits: UnsafeBufferPointer(logits.buffer), labels: y, rows: rows,
                    classes: classes, ignoreLabel: -1, gradient: scratchGradient(logits.shape))
            }
            combine(lambda, 1 - lambda)
            loss = lambda * loss + (1 - lambda) * second
        }
        update(clock)
        return (loss, logits)
    }

    /// A second gradient buffer the shape of the logits (mixup's second loss).
    private func scratchGradient(_ shape: [Int]) -> UnsafeMutableBufferPointer<Float> {
        if mixGradient.shape != shape { mixGradient.resize(to: shape) }
        return mixGradient.buffer
    }

    /// `logitsGradient = a logitsGradient + b mixGradient` (both the shape of the logits).
    private func combine(_ a: Float, _ b: Float) {
        precondition(mixGradient.count == logitsGradient.count)
        let (g, h) = (logitsGradient.pointer, mixGradient.pointer)
        for i in 0..<logitsGradient.count { g[i] = a * g[i] + b * h[i] }
    }

    /// A distillation step: `loss` against the teacher's outputs for the same batch.
    /// - Parameters:
    ///   - teacher: the teacher's logits (or probabilities) for the batch, `[N, classes]`.
    ///   - labels: `[N]` labels with `DistillationLoss.noLabel` for unlabelled rows, or nil when
    ///     alpha = 1.
    ///   - mask: one flag per row of logits, false for a row that counts for nothing (padding);
    ///     nil when every row counts.
    ///   - mixing: for a mixup batch, each row's partner's label and the batch's `lambda`: the
    ///     loss is `alpha S + (1 - alpha) (lambda H(y) + (1 - lambda) H(y_partner))`, with `S`
    ///     the soft term against the teacher's output on the mixed inputs (every row; the `.dkd`
    ///     objective's target class is then the teacher's top class) and `H(y)` the hard term
    ///     over the rows that have a label in `y` (a share whose image has no label adds no hard
    ///     term; a batch without any label is the soft term alone, as without mixup).
    @discardableResult
    public func run(
        batch: Tensor, teacher: TeacherOutput, labels: UnsafeBufferPointer<Int32>?,
        loss: DistillationLoss, mask: UnsafeBufferPointer<Bool>? = nil,
        mixing: (partnerLabels: [Int32], lambda: Float)? = nil
    ) throws -> (value: DistillationLossValue, logits: Tensor) {
        let (logits, clock) = forward(batch)
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        let student = UnsafeBufferPointer(logits.buffer)
        guard let (partners, lambda) = mixing else {
            let value = try loss.evaluate(
                studentLogits: student, teacher: teacher, labels: labels, mask: mask, rows: rows,
                classes: classes, gradient: logitsGradient.buffer)
            update(clock)
            return (value, logits)
        }
        var value = try loss.with(alpha: 1).evaluate(
            studentLogits: student, teacher: teacher, labels: nil, mask: mask, rows: rows,
            classes: classes, gradient: logitsGradient.buffer)
        // As without mixup, a batch with no label at all is the soft term alone (alpha taken as 1).
        let shares = [(labels.map(Array.init), lambda), (partners, 1 - lambda)].filter {
            $0.0?.contains { $0 >= 0 } == true && $0.1 > 0
        }
        let alpha = shares.isEmpty ? 1 : loss.alpha
        value.loss *= alpha
        var hard: Float?
        for i in 0..<logitsGradient.count { logitsGradient[i] *= alpha }
        let hardOnly = try loss.with(alpha: 0)
        for (y, weight) in shares {
            guard let y else { continue }
            let term = try y.withUnsafeBufferPointer { y in
                try hardOnly.evaluate(
                    studentLogits: student, teacher: teacher, labels: y, mask: mask, rows: rows,
                    classes: classes, gradient: scratchGradient(logits.shape))
            }
            combine(1, (1 - alpha) * weight)
            value.loss += (1 - alpha) * weight * term.loss
            hard = (hard ?? 0) + weight * term.loss
        }
        value.hardLoss = hard
        value.labelledRows = labels.map { $0.count { $0 >= 0 } } ?? 0
        update(clock)
        return (value, logits)
    }

    /// The forward pass in training mode, with the logits-gradient buffer sized for it; the clock
    /// readings at its start and end, for `timing`.
    private func forward(_ batch: Tensor) -> (
        logits: Tensor, clock: (started: Double, forwardEnd: Double)
    ) {
        let started = monotonicSeconds()
        let logits = split.forward(batch)
        if logitsGradient.shape != logits.shape { logitsGradient.resize(to: logits.shape) }
        return (logits, (started, monotonicSeconds()))
    }

    /// Backward and update (the loss has filled the logits' gradient), then the step's phases added
    /// to `timing`.
    private func update(_ clock: (started: Double, forwardEnd: Double)) {
        let (started, forwardEnd) = clock
        let lossEnd = monotonicSeconds()
        model.zeroGradients()
        optimizer.prepareForBackward(parameters)
        split.backward(logitsGradient)
        let backwardEnd = monotonicSeconds()
        optimizer.step(parameters)
        let end = monotonicSeconds()
        timing.add(
            forward: forwardEnd - started, loss: lossEnd - forwardEnd,
            backward: backwardEnd - lossEnd,
            update: end - backwardEnd)
    }
}

/// Seconds spent in each phase of the training steps taken, summed (a clock read costs ~20 ns
/// against a step's milliseconds).
public struct StepTiming: Sendable, Equatable {
    public private(set) var steps = 0
    public private(set) var forward = 0.0
    public private(set) var loss = 0.0
    public private(set) var backward = 0.0
    public private(set) var update = 0.0

    public init() {}

    mutating func add(forward: Double, loss: Double, backward: Double, update: Double) {
        steps += 1
        self.forward += forward
        self.loss += loss
        self.backward += backward
        self.update += update
    }
}
