import XCTest

@testable import DistillCore

/// Random operands for `C = alpha op(A) op(B) + beta C` (`op(A)` m x k, `op(B)` k x n), each matrix
/// stored with a row stride wider than it uses, and the check of a result against the product
/// taken in Double.
struct GemmOperands {
    let transA: MatrixTranspose, transB: MatrixTranspose
    let m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
    let a: [Float], b: [Float], c: [Float]

    /// `padding`: how much wider than its rows each of A, B and C is stored.
    init(
        _ transA: MatrixTranspose, _ transB: MatrixTranspose, m: Int, n: Int, k: Int,
        padding: (a: Int, b: Int, c: Int), generator: inout SeededGenerator
    ) {
        (self.transA, self.transB, self.m, self.n, self.k) = (transA, transB, m, n, k)
        let (rowsA, colsA) = transA == .none ? (m, k) : (k, m)
        let (rowsB, colsB) = transB == .none ? (k, n) : (n, k)
        (lda, ldb, ldc) = (colsA + padding.a, colsB + padding.b, n + padding.c)
        a = (0..<(rowsA * lda)).map { _ in generator.nextUniform() - 0.5 }
        b = (0..<(rowsB * ldb)).map { _ in generator.nextUniform() - 0.5 }
        c = (0..<(m * ldc)).map { _ in generator.nextUniform() - 0.5 }
    }

    /// Asserts that `result` (C after the product) is `alpha op(A) op(B) + beta C` within
    /// `accuracy`, and that the padding beyond each row's n columns is C's, untouched.
    func check(
        _ result: [Float], alpha: Double, beta: Double, accuracy: Double, _ name: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let x = transA == .none ? a[i * lda + p] : a[p * lda + i]
                    let y = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                    sum += Double(x) * Double(y)
                }
                let expected = alpha * sum + beta * Double(c[i * ldc + j])
                XCTAssertEqual(
                    Double(result[i * ldc + j]), expected, accuracy: accuracy,
                    "\(name) [\(i), \(j)]", file: file, line: line)
            }
            let padding = (i * ldc + n)..<((i + 1) * ldc)
            XCTAssertEqual(result[padding], c[padding], "\(name) row \(i)", file: file, line: line)
        }
    }
}
