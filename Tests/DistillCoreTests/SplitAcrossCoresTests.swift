import XCTest

@testable import DistillCore

#if canImport(Glibc)
import Glibc
#endif
#if !canImport(Accelerate)
import CBLAS
#endif

/// `splitAcrossCores`: every part runs once, and inside a part the work that would fan out over
/// the workers stays on the part's thread, with BLAS on one thread.
final class SplitAcrossCoresTests: XCTestCase {
    /// What a part saw: the threads its inner chunks ran on, the items they covered, BLAS's
    /// thread count.
    private final class Seen {
        var sameThread: [Bool] = []
        var covered: [Int] = []
        var blasThreads = 0
    }

    func testInnerParallelWorkStaysOnThePartsThread() {
        let parts = 3
        let seen = (0..<parts).map { _ in Seen() }
        let blasThreadsBefore = blasThreads()
        splitAcrossCores(parts) { part in
            let me = pthread_self()
            parallelFor(40, minimumWork: 0) { range in
                seen[part].sameThread.append(pthread_equal(pthread_self(), me) != 0)
                seen[part].covered += Array(range)
            }
            seen[part].blasThreads = blasThreads()
        }
        for (part, s) in seen.enumerated() {
            XCTAssertEqual(s.covered, Array(0..<40), "part \(part)")
            XCTAssertEqual(s.sameThread, Array(repeating: true, count: min(processorCount, 40)))
            #if !canImport(Accelerate)
            XCTAssertEqual(s.blasThreads, 1)
            #endif
        }
        XCTAssertEqual(blasThreads(), blasThreadsBefore)
    }

    private func blasThreads() -> Int {
        #if canImport(Accelerate)
        return 0
        #else
        return Int(openblas_get_num_threads())
        #endif
    }
}
