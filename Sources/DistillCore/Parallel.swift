#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pointer that may cross into the worker closures of `parallelFor`.
///
/// Workers must write disjoint elements; that is the caller's promise, not the compiler's.
public struct SendablePointer<Element>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Element>
    @inlinable public init(_ pointer: UnsafeMutablePointer<Element>) { self.pointer = pointer }
    @inlinable public subscript(i: Int) -> Element {
        get { pointer[i] }
        nonmutating set { pointer[i] = newValue }
    }
}

/// The number of worker threads `parallelFor` uses: `DISTILL_THREADS` if set, else the machine's
/// active processor count. (BLAS has its own setting, e.g. `OPENBLAS_NUM_THREADS`.)
public let processorCount: Int = {
    if let text = getenv("DISTILL_THREADS"), let n = Int(String(cString: text)), n >= 1 { return n }
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}()

/// Runs `body` over `0..<count` split into contiguous chunks, one per core, when the work is
/// large enough (`count * costPerItem >= minimumWork`), and inline otherwise.
///
/// - Parameters:
///   - count: the number of items.
///   - costPerItem: a rough count of elements touched per item, to decide whether threads pay.
///   - minimumWork: below this total, run on the calling thread (thread hand-off costs ~10 µs).
///   - body: called with disjoint ranges that together cover `0..<count`.
public func parallelFor(
    _ count: Int, costPerItem: Int = 1, minimumWork: Int = 1 << 16,
    _ body: (Range<Int>) -> Void
) {
    let chunks = min(processorCount, count)
    if chunks <= 1 || count * costPerItem < minimumWork {
        if count > 0 { body(0..<count) }
        return
    }
    concurrentChunks(chunks) { chunk in
        let start = count * chunk / chunks
        let end = count * (chunk + 1) / chunks
        if start < end { body(start..<end) }
    }
}

/// Runs `body(part)` for every part in `0..<parts` at once, each part on a core of its own and
/// on that core alone: inside a part, BLAS runs on one thread and `parallelFor` and
/// `concurrentChunks` run their chunks in order on the part's thread. For work that splits into a
/// few independent parts, each enough to keep a core busy (`TrainingStep` runs the examples of a
/// batch so): one hand-off per part instead of one per product or pass, and each part's data stays
/// in its own core's cache. Nested inside a part, the parts run one after the other.
public func splitAcrossCores(_ parts: Int, _ body: (Int) -> Void) {
    withSingleThreadedBLAS {
        concurrentChunks(parts) { part in
            CorePart.$isActive.withValue(true) { body(part) }
        }
    }
}

/// Whether the calling thread runs a part of `splitAcrossCores`.
enum CorePart {
    @TaskLocal static var isActive = false
}
