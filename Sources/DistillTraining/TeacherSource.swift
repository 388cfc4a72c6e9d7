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
/// teacher at batch 32 x 128) would dwarf the student's. Each such chunk is split over the cores
/// as a training step splits its batch (`BatchSplit` in inference mode, with
/// `TrainingStep.defaultParts(for:)` parts: a teacher with transformer blocks runs a part of the
/// chunk on each core, on replicas sharing its weights).
public final class LiveTeachers: TeacherSource {
    public let models: [Model]
    public var rows: TeacherRows? { nil }
    /// One buffer per member: a member's `forward` result is overwritten by its next call.
    private var outputs: [Tensor]
    /// Per member, its forward passes over the cores.
    private let splits: [BatchSplit]
    private var chunkInputs = Tensor(zeros: [0])
    /// The most positions (examples times positions per example) a teacher runs on at once, over
    /// all the cores.
    static let positionsPerForward = 512

    /// - Parameter parts: the parts a chunk is split into (1: the model alone, its products split
    ///   by BLAS); `TrainingStep.defaultParts(for:)` of each member when nil.
    public init(_ models: [Model], parts: Int? = nil) {
        precondition(!models.isEmpty, "LiveTeachers needs at least one model")
        self.models = models
        outputs = models.map { _ in Tensor(zeros: [0]) }
        splits = models.map {
            BatchSplit(model: $0, maximumParts: parts ?? TrainingStep.defaultParts(for: $0))
        }
    }

    public func output(for batch: Batch) -> TeacherOutput {
        let n = batch.inputs.shape[0]
        let perExample = n > 0 ? batch.inputs.count / n : 0
        for (m, teacher) in models.enumerated() {
            let chunk = max(1, LiveTeachers.positionsPerForward / teacher.positions)
            let rows = teacher.positions * teacher.classes  // logits per example
            outputs[m].resize(to: [n * teacher.positions, teacher.classes])
            var start = 0
            while start < n {
                let count = min(chunk, n - start)
                let out: Tensor
                if count == n {
                    out = splits[m].forward(batch.inputs, mode: .inference)
                } else {
                    chunkInputs.resize(to: [count] + Array(batch.inputs.shape.dropFirst()))
                    chunkInputs.pointer.update(
                        from: batch.inputs.pointer + start * perExample, count: count * perExample)
                    out = splits[m].forward(chunkInputs, mode: .inference)
                }
                (outputs[m].pointer + start * rows).update(from: out.pointer, count: count * rows)
                start += count
            }
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
