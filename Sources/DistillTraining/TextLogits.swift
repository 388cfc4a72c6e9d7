import DistillCore
import DistillData
import DistillFormats
import DistillLosses
import DistillNN

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
                    try forEachRow(model: model, split: split) { row in
                        let top = largest(row, k: k, classes: classes)
                        let logP = logSoftmaxRow(UnsafeBufferPointer(start: row, count: classes))
                        try top.map { Float(logP[$0]) }.withUnsafeBufferPointer {
                            try appendValues($0)
                        }
                        try top.map { Int32($0) }.withUnsafeBufferPointer { try appendIndices($0) }
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
        try split.forEachEvaluationBatch(model: model, batchSize: batchSize) { _, logits, group in
            for (row, window) in group.enumerated() {
                for i in 0..<window.count {
                    try body(logits.pointer + (row * context + i) * model.classes)
                }
            }
        }
    }

    /// The classes of the `k` largest values of `row`, largest first (ties: the lower class).
    static func largest(_ row: UnsafeMutablePointer<Float>, k: Int, classes: Int) -> [Int] {
        var order = Array(0..<classes)
        order.sort { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
        return Array(order.prefix(k))
    }
}
