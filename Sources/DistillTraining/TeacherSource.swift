import DistillCore
import DistillData
import DistillLosses
import DistillNN

/// Gives the trainer each batch's teacher output: the training loop asks, and does not care
/// whether the rows were cached or the teachers run.
public protocol TeacherSource: AnyObject {
    /// Per-example rows for the batcher to gather in step with the examples, or nil when the
    /// source computes its outputs from the batch's inputs.
    var rows: TeacherRows? { get }
    /// The teacher's output for `batch`, `[batch.count, classes]`; valid until the next call.
    func output(for batch: Batch) -> TeacherOutput
}

/// Cached logits (computed once, or read from memory-mapped NPY files): the batcher gathers each
/// batch's rows.
public final class CachedTeacher: TeacherSource {
    public let rows: TeacherRows?

    public init(rows: TeacherRows) { self.rows = rows }

    public func output(for batch: Batch) -> TeacherOutput {
        let rows = UnsafeBufferPointer(batch.teacher!.buffer)
        return self.rows?.isRestBucket == true ? .topKLogProbabilities(rows) : .logits(rows)
    }
}

/// Teachers run in inference mode on every batch, on exactly the inputs the student sees (after
/// augmentation); several form an ensemble whose soft targets are the mean of their softened
/// distributions.
///
/// A sequence teacher runs on a few examples at a time, `positionsPerForward` positions in all:
/// its layers keep their activations between calls, and a whole batch's (380 MB for a 4 x 256
/// teacher at batch 32 x 128) would dwarf the student's. A teacher with transformer blocks splits
/// those positions over the workers as a training step splits its batch
/// (`TrainingStep.defaultParts(for:)`): each worker runs its own chunks on one core, on a replica
/// that shares the teacher's weights, with BLAS on one thread.
public final class LiveTeachers: TeacherSource {
    public let models: [Model]
    public var rows: TeacherRows? { nil }
    /// One buffer per member: a member's `forward` result is overwritten by its next call.
    private var outputs: [Tensor]
    /// Per member, its workers: the member itself, then its replicas.
    private let workers: [[Worker]]
    /// The most positions (examples times positions per example) a teacher runs on at once, over
    /// all its workers.
    static let positionsPerForward = 512

    /// A model that runs a teacher's chunks, and the examples of its current chunk (copied: a
    /// tensor starts at its storage's start).
    private final class Worker {
        let model: Model
        var input = Tensor(zeros: [0])
        init(_ model: Model) { self.model = model }
    }

    /// - Parameter workers: the workers a teacher's chunks are split over (1: the model alone,
    ///   its products split by BLAS); `TrainingStep.defaultParts(for:)` when nil (one per worker
    ///   for a model with transformer blocks, else 1).
    public init(_ models: [Model], workers: Int? = nil) {
        precondition(!models.isEmpty, "LiveTeachers needs at least one model")
        precondition(workers.map { $0 >= 1 } ?? true, "LiveTeachers needs at least one worker")
        self.models = models
        outputs = models.map { _ in Tensor(zeros: [0]) }
        self.workers = models.map { teacher in
            [Worker(teacher)]
                + (1..<(workers ?? TrainingStep.defaultParts(for: teacher))).map { _ in
                    Worker(teacher.replica())
                }
        }
    }

    /// The examples of each chunk of a batch of `n`, for a teacher of `positions` positions per
    /// example on `workers` workers: a worker's share of `positionsPerForward`, and no more than its
    /// share of the batch (at least 1).
    static func examplesPerChunk(positions: Int, workers: Int, batch n: Int) -> Int {
        max(1, min(positionsPerForward / workers / positions, (n + workers - 1) / workers))
    }

    public func output(for batch: Batch) -> TeacherOutput {
        let n = batch.inputs.shape[0]
        let perExample = n > 0 ? batch.inputs.count / n : 0
        let exampleShape = Array(batch.inputs.shape.dropFirst())
        for (m, teacher) in models.enumerated() {
            let rows = teacher.positions * teacher.classes  // logits per example
            outputs[m].resize(to: [n * teacher.positions, teacher.classes])
            let workers = self.workers[m]
            let chunk = LiveTeachers.examplesPerChunk(
                positions: teacher.positions, workers: workers.count, batch: n)
            if chunk >= n {
                let out = teacher.forward(batch.inputs, mode: .inference)
                outputs[m].pointer.update(from: out.pointer, count: n * rows)
                continue
            }
            let chunks = (n + chunk - 1) / chunk
            let (source, target) = (
                SendablePointer(batch.inputs.pointer), SendablePointer(outputs[m].pointer)
            )
            /// Worker `w`'s chunks: `w`, `w + workers`, ...
            func run(_ w: Int) {
                let worker = workers[w]
                for c in stride(from: w, to: chunks, by: workers.count) {
                    let (start, count) = (c * chunk, min(chunk, n - c * chunk))
                    worker.input.resize(to: [count] + exampleShape)
                    worker.input.pointer.update(
                        from: source.pointer + start * perExample, count: count * perExample)
                    let out = worker.model.forward(worker.input, mode: .inference)
                    (target.pointer + start * rows).update(from: out.pointer, count: count * rows)
                }
            }
            if workers.count == 1 { run(0) } else { splitAcrossCores(workers.count, run) }
        }
        return models.count > 1
            ? .ensembleLogits(outputs.map { UnsafeBufferPointer($0.buffer) })
            : .logits(UnsafeBufferPointer(outputs[0].buffer))
    }
}

extension TeacherSignal {
    /// The source that serves this signal to a training loop.
    public func makeSource() -> any TeacherSource {
        switch self {
        case .rows(let rows): return CachedTeacher(rows: rows)
        case .models(let models): return LiveTeachers(models)
        }
    }

    /// How many teachers give the soft targets (1 for cached rows).
    public var teacherCount: Int {
        if case .models(let models) = self { return models.count }
        return 1
    }

    /// How a teacher's top-k rows treat the missing mass; nil when the teacher is not top-k rows.
    public var topKMass: TopKMass? {
        if case .rows(.topK(_, _, _, let mass, _)) = self { return mass }
        return nil
    }
}
