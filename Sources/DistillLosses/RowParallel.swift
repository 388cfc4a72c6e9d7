import DistillCore

/// Partial sums of a range of rows.
struct RowTotals {
    var soft = 0.0
    var hard = 0.0
    var error: LossError?

    mutating func add(_ other: RowTotals) {
        soft += other.soft
        hard += other.hard
        if error == nil { error = other.error }
    }
}

/// Runs `body` over `0..<rows` in one contiguous chunk per worker (`processorCount`, which
/// `DISTILL_THREADS` sets) when the matrix is large enough for threads to pay (`rows * classes >=
/// 65,536`), and sums what the chunks return.
func forEachRowChunk(rows: Int, classes: Int, _ body: (Range<Int>) -> RowTotals) -> RowTotals {
    let chunks = min(processorCount, rows)
    if chunks <= 1 || rows * classes < 1 << 16 {
        return rows > 0 ? body(0..<rows) : RowTotals()
    }
    return withUnsafeTemporaryAllocation(of: RowTotals.self, capacity: chunks) { partials in
        concurrentChunks(chunks) { c in
            let range = (rows * c / chunks)..<(rows * (c + 1) / chunks)
            (partials.baseAddress! + c).initialize(to: body(range))
        }
        var total = RowTotals()
        for c in 0..<chunks { total.add(partials[c]) }
        partials.baseAddress!.deinitialize(count: chunks)
        return total
    }
}
