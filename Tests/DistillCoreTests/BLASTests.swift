import XCTest

@testable import DistillCore

/// The one BLAS wrapper: row-major `gemm` in every orientation, with strides, alpha and beta,
/// against a plain triple loop in Double; `axpy` (SGD's update) against the element-wise formula.
final class BLASTests: XCTestCase {
    /// `op(A)` is m x k, `op(B)` is k x n; each stored with a row stride wider than it uses.
    func testGemmMatchesATripleLoopInEveryOrientationWithStrides() {
        var generator = SeededGenerator(seed: 3)
        for transA in [MatrixTranspose.none, .transpose] {
            for transB in [MatrixTranspose.none, .transpose] {
                let x = GemmOperands(
                    transA, transB, m: 5, n: 3, k: 7, padding: (2, 1, 3), generator: &generator)
                var c = x.c
                gemm(
                    transA, transB, m: x.m, n: x.n, k: x.k, alpha: 2, a: x.a, lda: x.lda, b: x.b,
                    ldb: x.ldb, beta: 0.5, c: &c, ldc: x.ldc)
                x.check(c, alpha: 2, beta: 0.5, accuracy: 1e-5, "\(transA) \(transB)")
            }
        }
    }

    /// With k = 0 the product is empty: C = beta C (BLAS itself leaves C untouched only for beta 1).
    func testGemmWithNoProductsScalesC() {
        var c: [Float] = [1, -2, 3, 4]
        gemm(
            .none, .none, m: 2, n: 2, k: 0, a: [], lda: 1, b: [], ldb: 2, beta: 0.25, c: &c, ldc: 2)
        XCTAssertEqual(c, [0.25, -0.5, 0.75, 1])
    }

    /// A better OpenBLAS kernel is asked for only when OpenBLAS fell back to its generic one, the
    /// user has not chosen one, and the CPU has what the kernel needs.
    func testBetterKernelOnlyReplacesTheGenericOne() {
        let avx512: Set<String> = [
            "sse2", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl",
        ]
        XCTAssertEqual(
            BLASKernel.better(than: "Prescott", flags: avx512, coreTypeIsSet: false), "SkylakeX")
        XCTAssertEqual(
            BLASKernel.better(than: "Prescott", flags: ["avx2", "fma"], coreTypeIsSet: false),
            "Haswell")
        // no FMA
        XCTAssertNil(BLASKernel.better(than: "Prescott", flags: ["avx2"], coreTypeIsSet: false))
        // the user's choice
        XCTAssertNil(BLASKernel.better(than: "Prescott", flags: avx512, coreTypeIsSet: true))
        // recognised
        XCTAssertNil(BLASKernel.better(than: "Zen", flags: avx512, coreTypeIsSet: false))
        #if canImport(Glibc) && arch(x86_64)
        XCTAssertTrue(BLASKernel.cpuFlags().contains("sse2"), "/proc/cpuinfo's flags")
        #endif
    }

    /// `recordingGemmCalls` records each call's shape and scale inside its scope only, and
    /// `compacted` gives each operand its used width.
    func testGemmRecordingRecordsCallsAndCompactsStrides() {
        let a = [Float](repeating: 1, count: 2 * 5)
        let b = [Float](repeating: 1, count: 3 * 4)
        var c = [Float](repeating: 0, count: 2 * 6)
        let (_, calls) = recordingGemmCalls {
            gemm(
                .none, .none, m: 2, n: 4, k: 3, alpha: 0.5, a: a, lda: 5, b: b, ldb: 4, beta: 0.9,
                c: &c, ldc: 6)
        }
        let (_, outside) = recordingGemmCalls { () }
        // not recorded
        gemm(.none, .none, m: 2, n: 4, k: 3, a: a, lda: 5, b: b, ldb: 4, beta: 0, c: &c, ldc: 6)
        XCTAssertEqual(outside, [])
        XCTAssertEqual(
            calls,
            [
                GemmCall(
                    transA: .none, transB: .none, m: 2, n: 4, k: 3, lda: 5, ldb: 4, ldc: 6,
                    beta: 0.9, alpha: 0.5)
            ])
        XCTAssertEqual(
            calls[0].compacted,
            GemmCall(
                transA: .none, transB: .none, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4, beta: 0.9,
                alpha: 0.5))
        XCTAssertEqual(c[0], 3)  // the unrecorded call ran too
    }

    /// Calls that `concurrentChunks` workers make inside the scope are recorded too, a region's
    /// chunk by chunk after the calls made before it, each with its region and chunk, and with
    /// whether BLAS was on one thread then.
    func testGemmRecordingRecordsTheWorkersCalls() {
        let a = [Float](repeating: 1, count: 4 * 3)
        let b = [Float](repeating: 1, count: 3 * 2)
        var c = [Float](repeating: 0, count: 4 * 2 * 4)
        c.withUnsafeMutableBufferPointer { buffer in
            let out = SendablePointer(buffer.baseAddress!)
            func product(rows: Int, into offset: Int) {
                gemm(
                    .none, .none, m: rows, n: 2, k: 3, a: a, lda: 3, b: b, ldb: 2,
                    c: out.pointer + offset, ldc: 2)
            }
            let (_, calls) = recordingGemmCalls {
                product(rows: 4, into: 0)
                withSingleThreadedBLAS {
                    concurrentChunks(4) { chunk in
                        product(rows: chunk + 1, into: 8 * chunk)
                        product(rows: 1, into: 8 * chunk)
                    }
                }
                product(rows: 2, into: 0)
            }
            XCTAssertEqual(calls.count, 10)
            XCTAssertEqual(calls.map(\.m), [4, 1, 1, 2, 1, 3, 1, 4, 1, 2])
            XCTAssertNil(calls[0].worker)
            XCTAssertNil(calls[9].worker)
            XCTAssertEqual(calls[1...8].map { $0.worker?.chunk }, [0, 0, 1, 1, 2, 2, 3, 3])
            XCTAssertTrue(calls[1...8].allSatisfy { $0.worker?.region == 0 })
            XCTAssertTrue(calls[1...8].allSatisfy { $0.worker?.chunks == 4 })
            #if !canImport(Accelerate)
            XCTAssertTrue(calls[1...8].allSatisfy { $0.worker?.singleThreadedBLAS == true })
            #endif
        }
        XCTAssertEqual(c[8 * 3 + 7], 3)  // the fourth chunk's fourth row, as computed
    }

    /// `y = alpha x + y` over a length that leaves a tail after any SIMD width and over one long
    /// enough for BLAS to use its threads; a count of zero touches nothing. The values are exact in
    /// Float, so fused and unfused multiply-adds agree.
    func testAxpyAddsAScaledVector() {
        for count in [37, 300_001] {
            let x = (0..<count).map { Float($0 % 17) - 8 }
            var y = (0..<count).map { Float($0 % 5) * 0.5 }
            let before = y
            axpy(count: count, alpha: -0.25, x: x, y: &y)
            for i in 0..<count where y[i] != before[i] - 0.25 * x[i] {
                XCTFail(
                    "count \(count), element \(i): \(y[i]), expected \(before[i] - 0.25 * x[i])")
                break
            }
        }
        var z: [Float] = [1, 2]
        axpy(count: 0, alpha: 5, x: [3, 4], y: &z)
        XCTAssertEqual(z, [1, 2])
    }
}
