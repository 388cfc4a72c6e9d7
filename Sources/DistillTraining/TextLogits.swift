import DistillCore
import DistillData
import DistillFormats
import DistillNN

/// A language model's logits at every predicted position of a text split, for a student to
/// learn from later (`--teacher-logits`, `--teacher-top-k`).
///
/// Row `i` holds the logits that predict byte `i + 1` from the bytes before it in its evaluation
/// window (`TextSplit.evaluationWindows`), so the rows are the split's positions in order,
/// `count - 1` of them. Written as NPY: dense `[count - 1, 256]` float32 (1 KB a byte of text), or
/// the k largest per row as `DIR/values.npy` `[count - 1, k]` float32 (largest first) and
/// `DIR/indices.npy` `[count - 1, k]` int32 (4k + 4k bytes a byte of text). Streamed: the text may
/// be larger than memory.
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
            // Values first, then indices from a second pass (each file streams on its own).
            try NPY.write(Float.self, shape: [rows, k], to: path + "/values.npy") { append in
                try forEachRow(model: model, split: split) { row in
                    let top = largest(row, k: k, classes: classes)
                    try top.map { row[$0] }.withUnsafeBufferPointer { try append($0) }
                }
            }
            try NPY.write(Int32.self, shape: [rows, k], to: path + "/indices.npy") { append in
                try forEachRow(model: model, split: split) { row in
                    try largest(row, k: k, classes: classes).map { Int32($0) }
                        .withUnsafeBufferPointer { try append($0) }
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
        let windows = split.evaluationWindows(context: context)
        var start = 0
        while start < windows.count {
            let group = windows[start..<min(start + batchSize, windows.count)]
            let inputs = Tensor(zeros: [group.count, context])
            for (row, window) in group.enumerated() {
                for (i, p) in window.enumerated() { inputs[row * context + i] = Float(split[p]) }
            }
            let logits = model.forward(inputs, mode: .inference)
            for (row, window) in group.enumerated() {
                for i in 0..<window.count {
                    try body(logits.pointer + (row * context + i) * model.classes)
                }
            }
            start += group.count
        }
    }

    /// The classes of the `k` largest values of `row`, largest first (ties: the lower class).
    static func largest(_ row: UnsafeMutablePointer<Float>, k: Int, classes: Int) -> [Int] {
        var order = Array(0..<classes)
        order.sort { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
        return Array(order.prefix(k))
    }
}
