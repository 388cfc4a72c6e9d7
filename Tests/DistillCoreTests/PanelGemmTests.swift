import XCTest

@testable import DistillCore

/// Our own GEMM kernel (`panelGemm`) against a triple loop in Double, on shapes that take each of
/// its edges: rows that leave a short register tile, columns that leave a short panel, a depth of
/// more than one packed run (the first scales by beta, the next add), leading dimensions wider
/// than the matrices, every orientation it takes; and the rule that sends `gemm`'s calls to it.
final class PanelGemmTests: XCTestCase {
    func testPanelGemmMatchesATripleLoopAtItsEdges() {
        var generator = SeededGenerator(seed: 11)
        let orientations: [(MatrixTranspose, MatrixTranspose)] = [
            (.none, .none), (.none, .transpose), (.transpose, .none),
        ]
        for (transA, transB) in orientations {
            for (m, n, k) in [(13, 70, 130), (6, 64, 1), (1, 3, 5), (20, 128, 129)] {
                for beta: Float in [0, 1, 0.5] {
                    let (rowsA, colsA) = transA == .none ? (m, k) : (k, m)
                    let (rowsB, colsB) = transB == .none ? (k, n) : (n, k)
                    let (lda, ldb, ldc) = (colsA + 3, colsB + 1, n + 2)
                    let a = (0..<(rowsA * lda)).map { _ in generator.nextUniform() - 0.5 }
                    let b = (0..<(rowsB * ldb)).map { _ in generator.nextUniform() - 0.5 }
                    let before = (0..<(m * ldc)).map { _ in generator.nextUniform() - 0.5 }
                    var serial = before
                    var threaded = before
                    panelGemm(
                        transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: &serial, ldc: ldc)
                    panelGemm(
                        transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: &threaded, ldc: ldc, threaded: true)
                    let name = "\(transA) \(transB) \(m) x \(n) x \(k), beta \(beta)"
                    // Each element is summed in the same order on any number of threads.
                    XCTAssertEqual(serial, threaded, name)
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum = 0.0
                            for p in 0..<k {
                                let x = transA == .none ? a[i * lda + p] : a[p * lda + i]
                                let y = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                                sum += Double(x) * Double(y)
                            }
                            let expected = sum + Double(beta) * Double(before[i * ldc + j])
                            XCTAssertEqual(
                                Double(serial[i * ldc + j]), expected, accuracy: 2e-5,
                                "\(name) [\(i), \(j)]")
                        }
                        // The padding beyond each row's n columns is left alone.
                        XCTAssertEqual(
                            serial[(i * ldc + n)..<((i + 1) * ldc)],
                            before[(i * ldc + n)..<((i + 1) * ldc)], name)
                    }
                }
            }
        }
    }

    /// `gemm` sends a call to `panelGemm` only with alpha 1, never with both operands transposed,
    /// and only at the small-model shapes it is measured faster at.
    func testPanelGemmFitsOnlyTheSmallModelShapes() {
        XCTAssertTrue(panelGemmFits(.none, .transpose, m: 512, n: 256, k: 64, alpha: 1))
        XCTAssertTrue(panelGemmFits(.none, .none, m: 512, n: 64, k: 256, alpha: 1))
        XCTAssertTrue(panelGemmFits(.transpose, .none, m: 256, n: 64, k: 4096, alpha: 1))
        XCTAssertFalse(panelGemmFits(.none, .transpose, m: 512, n: 256, k: 64, alpha: 2))
        XCTAssertFalse(panelGemmFits(.transpose, .transpose, m: 64, n: 64, k: 64, alpha: 1))
        // An attention tile (32 rows, k 16), a wide layer, a deep one, a wide weight gradient.
        XCTAssertFalse(panelGemmFits(.none, .transpose, m: 32, n: 128, k: 16, alpha: 1))
        XCTAssertFalse(panelGemmFits(.none, .transpose, m: 512, n: 1024, k: 256, alpha: 1))
        XCTAssertFalse(panelGemmFits(.none, .transpose, m: 512, n: 256, k: 1024, alpha: 1))
        XCTAssertFalse(panelGemmFits(.transpose, .none, m: 64, n: 256, k: 4096, alpha: 1))
    }
}
