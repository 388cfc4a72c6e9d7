import DistillCore
import DistillData
import DistillFormats
import DistillLosses
import DistillTestSupport
import Foundation
import XCTest

/// Top-k teacher rows. Renormalised: the soft targets are the teacher's softmax over its k classes,
/// `p_j = exp(v_j / T) / sum_{i in K} exp(v_i / T)` (0 outside K), against the student's full
/// softmax at T. Rest bucket: the k log-probabilities and the missing mass as one more outcome,
/// against the student's softmax coarsened the same way.
final class TopKTeacherTests: XCTestCase {
    let (rows, classes) = (5, 7)

    /// The top-k rows of `logits` (largest first) as values/indices NPY files, then as TeacherRows.
    func topK(
        _ logits: [Float], k: Int, dir: String, mass: TopKMass = .renormalise
    ) throws -> TeacherRows {
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
            classes: classes, mass: mass)
    }

    func dense(_ rowsSource: TeacherRows) -> [Float] {
        var out = [Float](repeating: 0, count: rows * classes)
        out.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows { rowsSource.copyRow(r, to: p.baseAddress! + r * classes) }
        }
        return out
    }

    func loss(_ teacher: [Float], student: [Float], temperature: Float, rest: Bool = false) throws
        -> (Float, [Float])
    {
        var gradient = [Float](repeating: 0, count: rows * classes)
        let value = try teacher.withUnsafeBufferPointer { t in
            try student.withUnsafeBufferPointer { s in
                try gradient.withUnsafeMutableBufferPointer { g in
                    try DistillationLoss(temperature: temperature, alpha: 1).evaluate(
                        studentLogits: s, teacher: rest ? .topKLogProbabilities(t) : .logits(t),
                        rows: rows, classes: classes, gradient: g)
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

    /// Each row's log-softmax at T = 1, in Double: what `distill logits --top-k` stores.
    func logSoftmaxRows(_ logits: [Float]) -> [Float] {
        (0..<rows).flatMap { r in
            logSoftmaxRow(logits[(r * classes)..<((r + 1) * classes)]).map { Float($0) }
        }
    }

    /// The rest-bucket soft term in Double, `T^2 / rows * sum_rows KL` over the k classes and the
    /// bucket (teacher `logP` at T = 1 for its top k, the student's logits `s`).
    func restBucketReference(logP: [Double], student s: [Double], k: Int, temperature t: Double)
        -> Double
    {
        var total = 0.0
        for r in 0..<rows {
            let lp = Array(logP[(r * classes)..<((r + 1) * classes)])
            let sr = Array(s[(r * classes)..<((r + 1) * classes)])
            let top = Set(lp.indices.sorted { lp[$0] > lp[$1] }.prefix(k))
            let rest = 1 - top.reduce(0.0) { $0 + exp(lp[$1]) }
            let z = top.reduce(0.0) { $0 + exp(lp[$1] / t) } + (rest > 0 ? exp(log(rest) / t) : 0)
            let ms = sr.max()!
            let zs = sr.reduce(0.0) { $0 + exp(($1 - ms) / t) }
            let q = sr.map { exp(($0 - ms) / t) / zs }
            var qRest = 0.0
            for j in 0..<classes where !top.contains(j) { qRest += q[j] }
            for j in top {
                let p = exp(lp[j] / t) / z
                total += p * log(p / q[j])
            }
            if rest > 0 {
                let pRest = exp(log(rest) / t) / z
                total += pRest * log(pRest / qRest)
            }
        }
        return t * t * total / Double(rows)
    }

    func testRestBucketOverAllClassesIsTheDenseLoss() throws {
        let teacher = fixtureValues(rows * classes, seed: 5, scale: 3)
        let student = fixtureValues(rows * classes, seed: 6, scale: 3)
        let rowsSource = try topK(
            logSoftmaxRows(teacher), k: classes, dir: try makeTemporaryDirectory("distill-topk"),
            mass: .rest)
        for T in [Float(1), 4] {
            let (a, ga) = try loss(teacher, student: student, temperature: T)
            let (b, gb) = try loss(dense(rowsSource), student: student, temperature: T, rest: true)
            assertClose([b], [Double(a)], rtol: 1e-5, atol: 1e-6)
            assertClose(gb, ga.map(Double.init), rtol: 1e-4, atol: 1e-6)
        }
    }

    /// Value against the Double reference, and gradient against central differences of it: the
    /// target's share of the bucket follows the student, yet `T (q - P~)` is the exact gradient.
    func testRestBucketValueAndGradient() throws {
        let teacher = fixtureValues(rows * classes, seed: 7, scale: 3)
        let student = fixtureValues(rows * classes, seed: 8, scale: 3)
        let logP = logSoftmaxRows(teacher)
        for k in [1, 3] {
            let rowsSource = try topK(
                logP, k: k, dir: try makeTemporaryDirectory("distill-topk"), mass: .rest)
            for T in [Float(1), 4] {
                let (value, gradient) = try loss(
                    dense(rowsSource), student: student, temperature: T, rest: true)
                let (lp, s) = (logP.map(Double.init), student.map(Double.init))
                let reference = restBucketReference(
                    logP: lp, student: s, k: k, temperature: Double(T))
                assertClose([value], [reference], rtol: 1e-4, atol: 1e-6)
                var differences = [Double](repeating: 0, count: s.count)
                let h = 1e-5
                for i in s.indices {
                    var (up, down) = (s, s)
                    up[i] += h
                    down[i] -= h
                    differences[i] =
                        (restBucketReference(logP: lp, student: up, k: k, temperature: Double(T))
                            - restBucketReference(
                                logP: lp, student: down, k: k, temperature: Double(T))) / (2 * h)
                }
                assertClose(gradient, differences, rtol: 1e-3, atol: 1e-5)
            }
        }
        // At k = 1 the target stays soft: the top class's gradient is T (q - P_top), P_top < 1.
        let one = try topK(logP, k: 1, dir: try makeTemporaryDirectory("distill-topk"), mass: .rest)
        let (_, g1) = try loss(dense(one), student: student, temperature: 1, rest: true)
        let (_, hard) = try loss(
            dense(try topK(teacher, k: 1, dir: try makeTemporaryDirectory("distill-topk"))),
            student: student, temperature: 1)
        XCTAssertNotEqual(g1, hard)
    }

    func testRestBucketRefusesLogits() throws {
        let teacher = fixtureValues(rows * classes, seed: 9, scale: 3).map { $0 + 5 }
        XCTAssertThrowsError(
            try topK(teacher, k: 2, dir: try makeTemporaryDirectory("distill-topk"), mass: .rest)
        ) { XCTAssertTrue("\($0)".contains("log-probabilities"), "\($0)") }
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
