import DistillCore
import DistillData
import DistillFormats
import DistillLosses
import DistillTestSupport
import Foundation
import XCTest

/// Top-k teacher logits: the soft targets are the teacher's softmax renormalised over its k
/// classes, `p_j = exp(v_j / T) / sum_{i in K} exp(v_i / T)` (0 outside K), against the student's
/// full softmax at T.
final class TopKTeacherTests: XCTestCase {
    let (rows, classes) = (5, 7)

    /// The top-k rows of `logits` (largest first) as values/indices NPY files, then as TeacherRows.
    func topK(_ logits: [Float], k: Int, dir: String) throws -> TeacherRows {
        var values: [Double] = []
        var indices: [Double] = []
        for r in 0..<rows {
            let row = Array(logits[(r * classes)..<((r + 1) * classes)])
            let order = row.indices.sorted { row[$0] > row[$1] }.prefix(k)
            values += order.map { Double(row[$0]) }
            indices += order.map { Double($0) }
        }
        try Data(npyBytes(descr: "<f4", shape: [rows, k], data: elementBytes(values, size: 4)))
            .write(to: URL(fileURLWithPath: dir + "/values.npy"))
        try Data(
            npyBytes(
                descr: "<i8", shape: [rows, k],
                data: elementBytes(indices.map { Double(bitPattern: UInt64($0)) }, size: 8))
        )
        .write(to: URL(fileURLWithPath: dir + "/indices.npy"))
        return try TeacherRows.topK(
            values: NPYShards(dir + "/values.npy"),
            indices: NPYShards(dir + "/indices.npy", integers: true),
            classes: classes)
    }

    func dense(_ rowsSource: TeacherRows) -> [Float] {
        var out = [Float](repeating: 0, count: rows * classes)
        out.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows { rowsSource.copyRow(r, to: p.baseAddress! + r * classes) }
        }
        return out
    }

    func loss(_ teacher: [Float], student: [Float], temperature: Float) throws -> (Float, [Float]) {
        var gradient = [Float](repeating: 0, count: rows * classes)
        let value = try teacher.withUnsafeBufferPointer { t in
            try student.withUnsafeBufferPointer { s in
                try gradient.withUnsafeMutableBufferPointer { g in
                    try DistillationLoss(temperature: temperature, alpha: 1).evaluate(
                        studentLogits: s, teacher: .logits(t), rows: rows, classes: classes,
                        gradient: g)
                }
            }
        }
        return (value.loss, gradient)
    }

    func testAllClassesIsTheDenseLoss() throws {
        let teacher = fixtureValues(rows * classes, seed: 1, scale: 3)
        let student = fixtureValues(rows * classes, seed: 2, scale: 3)
        let rowsSource = try topK(
            teacher, k: classes, dir: try makeTemporaryDirectory("distill-topk"))
        XCTAssertEqual(dense(rowsSource), teacher)  // k = C is a permutation back into place
        let (a, ga) = try loss(teacher, student: student, temperature: 4)
        let (b, gb) = try loss(dense(rowsSource), student: student, temperature: 4)
        XCTAssertEqual(a, b)
        XCTAssertEqual(ga, gb)
    }

    func testFewClassesRenormalisesOverThem() throws {
        let k = 3
        let teacher = fixtureValues(rows * classes, seed: 3, scale: 3)
        let student = fixtureValues(rows * classes, seed: 4, scale: 3)
        let rowsSource = try topK(teacher, k: k, dir: try makeTemporaryDirectory("distill-topk"))
        for T in [Float(1), 4, 50] {
            let (value, gradient) = try loss(dense(rowsSource), student: student, temperature: T)
            // Reference in Double: T^2 sum_{j in K} p_j log(p_j / q_j), gradient T (q - p) / rows.
            var expected = 0.0
            var expectedGradient = [Double](repeating: 0, count: rows * classes)
            let t = Double(T)
            for r in 0..<rows {
                let tr = (0..<classes).map { Double(teacher[r * classes + $0]) }
                let sr = (0..<classes).map { Double(student[r * classes + $0]) }
                let top = Set(tr.indices.sorted { tr[$0] > tr[$1] }.prefix(k))
                let zt = top.reduce(0.0) { $0 + exp(tr[$1] / t) }
                let ms = sr.max()!
                let zs = sr.reduce(0.0) { $0 + exp(($1 - ms) / t) }
                for j in 0..<classes {
                    let q = exp((sr[j] - ms) / t) / zs
                    let p = top.contains(j) ? exp(tr[j] / t) / zt : 0
                    if p > 0 { expected += t * t * p * log(p / q) / Double(rows) }
                    expectedGradient[r * classes + j] = t * (q - p) / Double(rows)
                }
            }
            assertClose([value], [expected], rtol: 1e-4, atol: 1e-6)
            assertClose(gradient, expectedGradient, rtol: 1e-4, atol: 1e-6)
        }
    }

    func testBadIndicesAreRefused() throws {
        let dir = try makeTemporaryDirectory("distill-topk")
        try Data(npyBytes(descr: "<f4", shape: [1, 2], data: elementBytes([1, 2], size: 4))).write(
            to: URL(fileURLWithPath: dir + "/v.npy"))
        for (bad, message) in [([3.0, 3.0], "twice"), ([0.0, 9.0], "outside")] {
            try Data(
                npyBytes(
                    descr: "<i8", shape: [1, 2],
                    data: elementBytes(bad.map { Double(bitPattern: UInt64($0)) }, size: 8))
            )
            .write(to: URL(fileURLWithPath: dir + "/i.npy"))
            XCTAssertThrowsError(
                try TeacherRows.topK(
                    values: NPYShards(dir + "/v.npy"),
                    indices: NPYShards(dir + "/i.npy", integers: true),
                    classes: 7)
            ) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }
}
