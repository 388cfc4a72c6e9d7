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

    /// One part alone leaves the other cores idle, where Dispatch would run the inner chunks it
    /// is handed (each sleeps a millisecond, long enough for an idle worker to take the next); in
    /// a part they run on the part's thread. Three parts: each part's chunks on its own thread.
    func testInnerParallelWorkStaysOnThePartsThread() {
        for parts in [1, 3] {
            let seen = (0..<parts).map { _ in Seen() }
            let blasThreadsBefore = blasThreads()
            splitAcrossCores(parts) { part in
                let me = pthread_self()
                parallelFor(40, minimumWork: 0) { range in
                    seen[part].sameThread.append(pthread_equal(pthread_self(), me) != 0)
                    seen[part].covered += Array(range)
                    usleep(1000)
                }
                seen[part].blasThreads = blasThreads()
            }
            for (part, s) in seen.enumerated() {
                XCTAssertEqual(s.covered, Array(0..<40), "\(parts) parts, part \(part)")
                XCTAssertEqual(
                    s.sameThread, Array(repeating: true, count: min(processorCount, 40)),
                    "\(parts) parts, part \(part)")
                #if !canImport(Accelerate)
                XCTAssertEqual(s.blasThreads, 1)
                #endif
            }
            XCTAssertEqual(blasThreads(), blasThreadsBefore)
        }
    }

    private func blasThreads() -> Int {
        #if canImport(Accelerate)
        return 0
        #else
        return Int(openblas_get_num_threads())
        #endif
    }
}
