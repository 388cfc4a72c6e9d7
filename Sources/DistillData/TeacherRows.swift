import DistillFormats

/// Per-example teacher outputs, gathered by the batcher in step with the examples: row `i`
/// belongs to example `i`.
public enum TeacherRows: Sendable {
    /// `[count, width]` values in memory.
    case values([Float], width: Int)
    /// Rows of memory-mapped NPY shards, read as batches need them; `rows[i]` is the shard row of
    /// example `i` (nil: row `i` itself).
    case mapped(NPYShards, rows: [Int]?)

    /// Values per row.
    public var width: Int {
        switch self {
        case let .values(_, width): return width
        case let .mapped(shards, _): return shards.columns
        }
    }

    /// The number of examples the rows cover.
    public var count: Int {
        switch self {
        case let .values(values, width): return width > 0 ? values.count / width : 0
        case let .mapped(shards, rows): return rows?.count ?? shards.rows
        }
    }

    /// Copies the row of example `i` to `destination` (`width` floats).
    @inline(__always)
    func copyRow(_ i: Int, to destination: UnsafeMutablePointer<Float>) {
        switch self {
        case let .values(values, width):
            values.withUnsafeBufferPointer { destination.update(from: $0.baseAddress! + i * width, count: width) }
        case let .mapped(shards, rows):
            shards.copyRow(rows?[i] ?? i, to: destination)
        }
    }

    /// The values of `.values` rows (empty for mapped rows).
    public var flatValues: [Float] {
        if case let .values(values, _) = self { return values }
        return []
    }

    /// The rows of the examples at `indices`, in that order.
    public func selecting(_ indices: [Int]) -> TeacherRows {
        switch self {
        case let .values(values, width):
            return .values(indices.flatMap { values[($0 * width)..<(($0 + 1) * width)] }, width: width)
        case let .mapped(shards, rows):
            return .mapped(shards, rows: indices.map { rows?[$0] ?? $0 })
        }
    }
}
