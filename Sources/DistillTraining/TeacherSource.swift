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
public final class LiveTeachers: TeacherSource {
    public let models: [Model]
    public var rows: TeacherRows? { nil }
    /// One buffer per member: a member's `forward` result is overwritten by its next call.
    private var outputs: [Tensor]

    public init(_ models: [Model]) {
        precondition(!models.isEmpty, "LiveTeachers needs at least one model")
        self.models = models
        outputs = models.map { _ in Tensor(zeros: [0]) }
    }

    public func output(for batch: Batch) -> TeacherOutput {
        for (m, teacher) in models.enumerated() {
            let out = teacher.forward(batch.inputs, mode: .inference)
            outputs[m].resize(to: out.shape)
            outputs[m].pointer.update(from: out.pointer, count: out.count)
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
