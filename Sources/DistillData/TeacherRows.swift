import DistillFormats

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-example teacher outputs, gathered by the batcher in step with the examples: row `i`
/// belongs to example `i`.
public enum TeacherRows: Sendable {
    /// `[count, width]` values in memory.
    case values([Float], width: Int)
    /// Rows of memory-mapped NPY shards, read as batches need them; `rows[i]` is the shard row of
    /// example `i` (nil: row `i` itself).
    case mapped(NPYShards, rows: [Int]?)
    /// A teacher's k largest logits or log-probabilities per example (`values` `[N, k]`) and their
    /// classes (`indices` `[N, k]`), memory-mapped; `mass` says what becomes of the other classes.
    /// With `.renormalise` a row becomes `classes` logits: the k values at their classes and,
    /// everywhere else, a logit 1e9 below the row's smallest, whose probability is 0 at any T up
    /// to 1e7 (below Float's smallest normal). With `.rest` the other classes are `-inf`, which the
    /// trainer passes to the loss as `TeacherOutput.topKLogProbabilities`.
    case topK(values: NPYShards, indices: NPYShards, classes: Int, mass: TopKMass, rows: [Int]?)

    /// How far below a top-k row's smallest logit the other classes' logits are put.
    public static let topKGap: Float = 1e9

    /// Whether these rows are top-k log-probabilities with a rest bucket.
    public var isRestBucket: Bool {
        if case .topK(_, _, _, .rest, _) = self { return true }
        return false
    }

    /// Values per row.
    public var width: Int {
        switch self {
        case .values(_, let width): return width
        case .mapped(let shards, _): return shards.columns
        case .topK(_, _, let classes, _, _): return classes
        }
    }

    /// The number of examples the rows cover.
    public var count: Int {
        switch self {
        case .values(let values, let width): return width > 0 ? values.count / width : 0
        case .mapped(let shards, let rows): return rows?.count ?? shards.rows
        case .topK(let values, _, _, _, let rows): return rows?.count ?? values.rows
        }
    }

    /// Copies the row of example `i` to `destination` (`width` floats).
    @inline(__always)
    public func copyRow(_ i: Int, to destination: UnsafeMutablePointer<Float>) {
        switch self {
        case .values(let values, let width):
            values.withUnsafeBufferPointer {
                destination.update(from: $0.baseAddress! + i * width, count: width)
            }
        case .mapped(let shards, let rows):
            shards.copyRow(rows?[i] ?? i, to: destination)
        case .topK(let values, let indices, let classes, let mass, let rows):
            let k = values.columns
            let row = rows?[i] ?? i
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * k) { scratch in
                let v = scratch.baseAddress!
                let c = v + k
                values.copyRow(row, to: v)
                indices.copyRow(row, to: c)
                var low = v[0]
                for j in 1..<k { low = min(low, v[j]) }
                let other = mass == .rest ? -Float.infinity : low - TeacherRows.topKGap
                destination.update(repeating: other, count: classes)
                for j in 0..<k { destination[Int(c[j])] = v[j] }
            }
        }
    }

    /// The rows of memory-mapped teacher logits, after checking that every value is finite (a NaN
    /// would otherwise surface as a diverged loss in the middle of training). Reads every row once.
    /// - Throws: `DataError` naming the row and column of the first non-finite value.
    public static func logits(_ shards: NPYShards) throws -> TeacherRows {
        var row = [Float](repeating: 0, count: shards.columns)
        for r in 0..<shards.rows {
            try row.withUnsafeMutableBufferPointer { buffer in
                shards.copyRow(r, to: buffer.baseAddress!)
                if let c = buffer.firstIndex(where: { !$0.isFinite }) {
                    throw DataError(
                        "teacher logits: row \(r), column \(c) holds \(buffer[c]); every logit must be finite"
                    )
                }
            }
        }
        return .mapped(shards, rows: nil)
    }

    /// Checks top-k values and indices: the same `[N, k]` shape, k in 1...classes, finite values,
    /// in every row k distinct classes in `0..<classes` and, for `.rest`, probabilities that sum to
    /// at most 1 (log-probabilities). Reads every row once.
    /// - Throws: `DataError` naming the first bad row.
    public static func topK(
        values: NPYShards, indices: NPYShards, classes: Int, mass: TopKMass = .rest
    ) throws -> TeacherRows {
        let k = values.columns
        guard indices.rows == values.rows, indices.columns == k else {
            throw DataError(
                "top-k values are [\(values.rows), \(k)] but indices are [\(indices.rows), \(indices.columns)]; they must match"
            )
        }
        guard k >= 1, k <= classes else {
            throw DataError(
                "top-k rows hold \(k) classes; the data has \(classes) (1 <= k <= classes)")
        }
        var v = [Float](repeating: 0, count: k)
        var c = [Float](repeating: 0, count: k)
        var seen = [Int](repeating: -1, count: classes)
        for r in 0..<values.rows {
            v.withUnsafeMutableBufferPointer { values.copyRow(r, to: $0.baseAddress!) }
            c.withUnsafeMutableBufferPointer { indices.copyRow(r, to: $0.baseAddress!) }
            for j in 0..<k {
                guard v[j].isFinite else {
                    throw DataError(
                        "top-k values: row \(r), column \(j) holds \(v[j]); every value must be finite"
                    )
                }
                let cls = Int(c[j])
                guard Float(cls) == c[j], cls >= 0, cls < classes else {
                    throw DataError(
                        "top-k indices: row \(r) holds class \(c[j]), outside 0..<\(classes)")
                }
                guard seen[cls] != r else {
                    throw DataError("top-k indices: row \(r) names class \(cls) twice")
                }
                seen[cls] = r
            }
            if mass == .rest {
                let total = v.reduce(0.0) { $0 + exp(Double($1)) }
                guard total <= 1 + 1e-3 else {
                    throw DataError(
                        "top-k values: row \(r) gives probabilities summing to \(total); the rest bucket (--top-k-mass rest) needs log-probabilities (log-softmax at T = 1); give --top-k-mass renormalise for logits"
                    )
                }
            }
        }
        return .topK(values: values, indices: indices, classes: classes, mass: mass, rows: nil)
    }

    /// The rows of the examples at `indices`, in that order.
    public func selecting(_ indices: [Int]) -> TeacherRows {
        switch self {
        case .values(let values, let width):
            return .values(
                indices.flatMap { values[($0 * width)..<(($0 + 1) * width)] }, width: width)
        case .mapped(let shards, let rows):
            return .mapped(shards, rows: indices.map { rows?[$0] ?? $0 })
        case .topK(let values, let topIndices, let classes, let mass, let rows):
            return .topK(
                values: values, indices: topIndices, classes: classes, mass: mass,
                rows: indices.map { rows?[$0] ?? $0 })
        }
    }
}

/// What becomes of the probability a top-k teacher row leaves out (see README, "Top-k teacher
/// logits").
public enum TopKMass: String, Sendable, CaseIterable {
    /// The missing mass is one more outcome, matched against the student's mass on the other
    /// classes; the values must be log-probabilities at T = 1. The default: it keeps the teacher's
    /// confidence (at k = 1 the target is still soft) and is exact at T = 1.
    case rest
    /// The teacher's softmax renormalised over its k classes; any logits will do.
    case renormalise
}
