import DistillCore
import DistillData
import DistillFormats
import DistillNN

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A language model's logits at every predicted position of a text split, for a student to
/// learn from later (`--teacher-logits`, `--teacher-top-k`).
///
/// Row `i` holds the logits that predict byte `i + 1` from the bytes before it in its evaluation
/// window (`TextSplit.evaluationWindows`), so the rows are the split's positions in order,
/// `count - 1` of them. Written as NPY: dense logits `[count - 1, 256]` float32 (1 KB a byte of
/// text), or the k most probable classes per row as `DIR/values.npy` `[count - 1, k]` float32, their
/// log-probabilities (log-softmax at T = 1, largest first, so that the missing mass
/// `1 - sum exp(values)` is known), and `DIR/indices.npy` `[count - 1, k]` int32 (4k + 4k bytes a
/// byte of text). Streamed: the text may be larger than memory.
public enum TextLogits {
    /// Writes `model`'s logits over `split` to `path` (dense), or its top `k` into the directory
    /// `path` (created if missing).
    /// - Throws: `FileError` for a file that cannot be written; `DataError` for k outside 1...256.
    public static func write(model: Model, split: TextSplit, to path: String, topK k: Int? = nil)
        throws
    {
        let classes = model.classes
        let rows = split.predictions
        if let k {
            guard k >= 1, k <= classes else {
                throw DataError("--top-k must be from 1 to \(classes), got \(k)")
            }
            try AtomicFile.createDirectory(path)
            // One pass over the text: both files stream at once, row by row.
            try NPY.write(Float.self, shape: [rows, k], to: path + "/values.npy") { appendValues in
                try NPY.write(Int32.self, shape: [rows, k], to: path + "/indices.npy") {
                    appendIndices in
                    var top = [Int](repeating: 0, count: k)
                    var values = [Float](repeating: 0, count: k)
                    var indices = [Int32](repeating: 0, count: k)
                    try forEachRow(model: model, split: split) { row in
                        largest(row, k: k, classes: classes, into: &top)
                        let logSum = logSumExp(row, classes)
                        for j in 0..<k {
                            values[j] = Float(Double(row[top[j]]) - logSum)
                            indices[j] = Int32(top[j])
                        }
                        try values.withUnsafeBufferPointer { try appendValues($0) }
                        try indices.withUnsafeBufferPointer { try appendIndices($0) }
                    }
                }
            }
        } else {
            try NPY.write(Float.self, shape: [rows, classes], to: path) { append in
                try forEachRow(model: model, split: split) { row in
                    try append(UnsafeBufferPointer(start: row, count: classes))
                }
            }
        }
    }

    /// Calls `body` with the logits row of every predicted position of `split`, in order.
    static func forEachRow(
        model: Model, split: TextSplit, batchSize: Int = 32,
        _ body: (UnsafeMutablePointer<Float>) throws -> Void
    ) throws {
        let context = model.inputShape[0]
        let parts = BatchSplit(model: model, maximumParts: TrainingStep.defaultParts(for: model))
        try split.forEachEvaluationBatch(running: parts, batchSize: batchSize) { _, logits, group in
            for (row, window) in group.enumerated() {
                for i in 0..<window.count {
                    try body(logits.pointer + (row * context + i) * model.classes)
                }
            }
        }
    }

    /// The classes of the `k` largest values of `row`, largest first (ties: the lower class), into
    /// `top` (`k` entries): one pass, keeping the k best in order by insertion.
    static func largest(
        _ row: UnsafeMutablePointer<Float>, k: Int, classes: Int, into top: inout [Int]
    ) {
        var count = 0
        for c in 0..<classes {
            let v = row[c]
            if count == k && !(v > row[top[k - 1]]) { continue }
            var i = min(count, k - 1)
            while i > 0 && v > row[top[i - 1]] {
                top[i] = top[i - 1]
                i -= 1
            }
            top[i] = c
            count = min(count + 1, k)
        }
    }

    /// `log sum exp(row)` in Double.
    static func logSumExp(_ row: UnsafeMutablePointer<Float>, _ classes: Int) -> Double {
        var m = -Float.infinity
        for c in 0..<classes { m = max(m, row[c]) }
        var sum = 0.0
        for c in 0..<classes { sum += exp(Double(row[c] - m)) }
        return Double(m) + log(sum)
    }
}
