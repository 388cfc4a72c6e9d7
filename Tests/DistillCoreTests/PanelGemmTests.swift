import XCTest

@testable import DistillCore

/// Our own GEMM kernel (`panelGemm`) against a triple loop in Double, on shapes that take each of
/// its edges: rows that leave a short register tile, columns that leave a short panel, a depth of
/// more than one packed run (the first scales by beta, the next add), leading dimensions wider
/// than the matrices, every orientation it takes, on one thread and split over the workers; and
/// the rule that sends `gemm`'s calls to it.
final class PanelGemmTests: XCTestCase {
    func testPanelGemmMatchesATripleLoopAtItsEdges() {
        var generator = SeededGenerator(seed: 11)
        let orientations: [(MatrixTranspose, MatrixTranspose)] = [
            (.none, .none), (.none, .transpose), (.transpose, .none),
        ]
        for (transA, transB) in orientations {
            // The last shape is large enough (17 tiles of rows) for `threaded` to split the rows
            // over two workers; the others run on one.
            for (m, n, k) in [
                (13, 70, 130), (6, 64, 1), (1, 3, 5), (20, 128, 129), (100, 130, 130),
            ] {
                for beta: Float in [0, 1, 0.5] {
                    let x = GemmOperands(
                        transA, transB, m: m, n: n, k: k, padding: (3, 1, 2),
                        generator: &generator)
                    var (serial, threaded) = (x.c, x.c)
                    panelGemm(
                        transA, transB, m: m, n: n, k: k, a: x.a, lda: x.lda, b: x.b, ldb: x.ldb,
                        beta: beta, c: &serial, ldc: x.ldc)
                    panelGemm(
                        transA, transB, m: m, n: n, k: k, a: x.a, lda: x.lda, b: x.b, ldb: x.ldb,
                        beta: beta, c: &threaded, ldc: x.ldc, threaded: true)
                    let name = "\(transA) \(transB) \(m) x \(n) x \(k), beta \(beta)"
                    // Each element is summed in the same order on any number of threads.
                    XCTAssertEqual(serial, threaded, name)
                    x.check(serial, alpha: 1, beta: Double(beta), accuracy: 2e-5, name)
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
        // A 64-wide attention head's dV = A^T dy over a tile of 32 queries.
        XCTAssertFalse(panelGemmFits(.transpose, .none, m: 128, n: 64, k: 32, alpha: 1))
    }
}
