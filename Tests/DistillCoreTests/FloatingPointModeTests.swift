import XCTest

@testable import DistillCore

// Linux only: on Apple platforms Distill leaves the floating-point mode alone.
#if !canImport(Accelerate)

/// Flushing subnormals to zero: on the calling thread, on OpenBLAS's worker threads, and on the
/// workers `concurrentChunks` runs. Each test restores the mode it found.
final class FloatingPointModeTests: XCTestCase {
    /// Half the least normal float, computed at run time (a constant would be folded at compile
    /// time, in the compiler's mode).
    private func halfLeastNormal(_ scale: Float) -> Float {
        Float.leastNormalMagnitude * scale
    }

    private func withFlushing(_ body: () throws -> Void) rethrows {
        let was = FloatingPointMode.flushesSubnormals
        FloatingPointMode.flushSubnormalsToZero(true)
        defer { FloatingPointMode.flushSubnormalsToZero(was) }
        try body()
    }

    func testTheCallingThreadFlushesSubnormalResults() {
        FloatingPointMode.flushSubnormalsToZero(false)
        XCTAssertFalse(FloatingPointMode.flushesSubnormals)
        XCTAssertGreaterThan(halfLeastNormal(opaque(0.5)), 0)
        withFlushing {
            XCTAssertTrue(FloatingPointMode.flushesSubnormals)
            XCTAssertEqual(halfLeastNormal(opaque(0.5)), 0)
        }
        XCTAssertGreaterThan(halfLeastNormal(opaque(0.5)), 0)
    }

    /// Every product of 1e-20 and 1e-20 is subnormal (1e-40): flushed, a 256 x 256 x 256 product
    /// (which OpenBLAS splits across its threads) is 0 everywhere; unflushed, each element sums
    /// 256 of them to 2.56e-38, a normal float.
    func testOpenBLASWorkersFlushAfterTheRestart() {
        let n = 256
        let a = [Float](repeating: 1e-20, count: n * n)
        var c = [Float](repeating: 1, count: n * n)
        FloatingPointMode.flushSubnormalsToZero(false)
        gemm(.none, .none, m: n, n: n, k: n, a: a, lda: n, b: a, ldb: n, c: &c, ldc: n)
        XCTAssertEqual(Double(c.min()!) / 2.56e-38, 1, accuracy: 1e-3)
        withFlushing {
            gemm(.none, .none, m: n, n: n, k: n, a: a, lda: n, b: a, ldb: n, c: &c, ldc: n)
            XCTAssertEqual(c.max(), 0)
            XCTAssertEqual(c.min(), 0)
        }
    }

    /// Every chunk runs in the caller's mode, whichever Dispatch worker picks it up: the workers
    /// exist from earlier tests in the other mode, and each chunk waits a millisecond so that
    /// more than the calling thread takes chunks (checked, on a machine with two cores or more).
    func testConcurrentChunksRunInTheCallersMode() {
        for flush in [true, false, true] {
            let was = FloatingPointMode.flushesSubnormals
            FloatingPointMode.flushSubnormalsToZero(flush)
            defer { FloatingPointMode.flushSubnormalsToZero(was) }
            var modes = [Bool](repeating: !flush, count: 32)
            var threads = [UInt](repeating: 0, count: 32)
            modes.withUnsafeMutableBufferPointer { modeSlots in
                threads.withUnsafeMutableBufferPointer { threadSlots in
                    let modeSlots = SendablePointer(modeSlots.baseAddress!)
                    let threadSlots = SendablePointer(threadSlots.baseAddress!)
                    concurrentChunks(32) { i in
                        usleep(1000)
                        modeSlots[i] = FloatingPointMode.flushesSubnormals
                        threadSlots[i] = UInt(pthread_self())
                    }
                }
            }
            XCTAssertEqual(modes, [Bool](repeating: flush, count: 32), "flush \(flush)")
            if ProcessInfo.processInfo.activeProcessorCount > 1 {
                XCTAssertGreaterThan(Set(threads).count, 1, "every chunk ran on one thread")
            }
        }
    }
}

/// `value`, hidden from the optimiser.
@inline(never) private func opaque(_ value: Float) -> Float { value }
#endif
