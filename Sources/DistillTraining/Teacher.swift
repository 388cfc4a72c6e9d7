import DistillCore
import DistillData
import DistillFormats
import DistillLosses
import DistillNN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a distilled student's soft targets come from.
public enum TeacherSignal {
    /// Logits `[N, C]` for the training examples in order, computed once (cached teacher outputs,
    /// from our own teachers or from an NPY file).
    case cached([Float])
    /// Logits read as batches need them (memory-mapped NPY shards of `--teacher-logits`, or the
    /// top-k logits of `--teacher-top-k`).
    case rows(TeacherRows)
    /// Teachers run in inference mode on every batch (needed when augmentation changes the
    /// inputs: the teacher sees the same augmented batch as the student).
    case models([Model])

    /// Cached outputs of `teachers` on `examples`, each in inference mode. Several teachers form an
    /// ensemble: the cache holds `T log(mean_m softmax(t_m / T))`, logits whose softmax at T is
    /// exactly the mean of the members' softened distributions.
    public static func cache(_ teachers: [Model], on examples: Examples, temperature: Float) throws -> TeacherSignal {
        precondition(!teachers.isEmpty)
        let outputs = try teachers.map { try inferLogits(model: $0, examples: examples) }
        if outputs.count == 1 { return .cached(outputs[0]) }
        return .cached(ensembleLogits(outputs, classes: teachers[0].classes, temperature: temperature))
    }

    /// `T log(mean_m softmax(t_m / T))` row by row (floored at the log of the smallest normal).
    static func ensembleLogits(_ members: [[Float]], classes: Int, temperature: Float) -> [Float] {
        let rows = members[0].count / classes
        var out = [Float](repeating: 0, count: members[0].count)
        let T = Double(temperature)
        for r in 0..<rows {
            var mean = [Double](repeating: 0, count: classes)
            for m in members {
                let row = m[(r * classes)..<((r + 1) * classes)].map(Double.init)
                let mx = row.max()!
                let z = row.reduce(0) { $0 + exp(($1 - mx) / T) }
                for c in 0..<classes { mean[c] += exp((row[c] - mx) / T) / z / Double(members.count) }
            }
            for c in 0..<classes { out[r * classes + c] = Float(T * log(max(mean[c], 1.2e-38))) }
        }
        return out
    }
}
