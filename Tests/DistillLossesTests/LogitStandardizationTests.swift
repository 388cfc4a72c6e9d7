import DistillTestSupport
import XCTest

@testable import DistillLosses

final class LogitStandardizationTests: XCTestCase {
    let rows = 4, classes = 6
    lazy var s = fixtureValues(rows * classes, seed: 31, scale: 3)
    lazy var t = fixtureValues(rows * classes, seed: 32, scale: 5)
    let labels: [Int32] = [2, -1, 0, 5]

    func evaluate(_ loss: DistillationLoss, _ student: [Float], gradient: inout [Float]) throws
        -> DistillationLossValue
    {
        try student.withUnsafeBufferPointer { sb in
            try t.withUnsafeBufferPointer { tb in
                try labels.withUnsafeBufferPointer { y in
                    try gradient.withUnsafeMutableBufferPointer { g in
                        try loss.evaluateStandardized(
                            studentLogits: sb, teacherLogits: tb, labels: y, rows: rows,
                            classes: classes, gradient: g)
                    }
                }
            }
        }
    }

    /// The value against a direct Double computation of the formula (z-scores with torch.std).
    func testValueMatchesTheFormula() throws {
        let loss = try DistillationLoss(temperature: 2, alpha: 0.6)
        var gradient = [Float](repeating: 0, count: s.count)
        let value = try evaluate(loss, s, gradient: &gradient)
        func z(_ row: ArraySlice<Float>) -> [Double] {
            let x = row.map(Double.init)
            let m = x.reduce(0, +) / Double(x.count)
            let sd = (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
            return x.map { ($0 - m) / (sd + 1e-7) }
        }
        func logSoftmax(_ x: [Double]) -> [Double] {
            let m = x.max()!
            let l = log(x.reduce(0) { $0 + exp($1 - m) })
            return x.map { $0 - m - l }
        }
        var kl = 0.0
        var ce = 0.0
        var labelled = 0.0
        for r in 0..<rows {
            let zs = z(s[(r * classes)..<((r + 1) * classes)])
            let zt = z(t[(r * classes)..<((r + 1) * classes)])
            let lq = logSoftmax(zs.map { $0 / 2 })
            let lp = logSoftmax(zt.map { $0 / 2 })
            for c in 0..<classes { kl += exp(lp[c]) * (lp[c] - lq[c]) }
            if labels[r] >= 0 {
                ce -=
                    logSoftmax(s[(r * classes)..<((r + 1) * classes)].map(Double.init))[
                        Int(labels[r])]
                labelled += 1
            }
        }
        let expected = 0.6 * 4 * kl / Double(rows) + 0.4 * ce / labelled
        assertClose(value.loss, expected, rtol: 1e-5)
        assertClose(value.hardLoss!, ce / labelled, rtol: 1e-5)
    }

    /// Central differences through the standardisation (step 1e-2; logits of scale 3).
    func testGradientMatchesCentralDifferences() throws {
        for alpha: Float in [1, 0.6] {
            let loss = try DistillationLoss(temperature: 3, alpha: alpha)
            var gradient = [Float](repeating: 0, count: s.count)
            var scratch = gradient
            _ = try evaluate(loss, s, gradient: &gradient)
            let numeric = try centralDifferences(s, step: 1e-2) {
                Double(try evaluate(loss, $0, gradient: &scratch).loss)
            }
            assertClose(gradient, numeric, rtol: 2e-3, atol: 2e-4, "alpha \(alpha)")
        }
    }

    /// `evaluate` dispatches to the standardised loss when the loss is built with it.
    func testEvaluateDispatches() throws {
        let plain = try DistillationLoss(temperature: 2, alpha: 0.6)
        let standardized = try DistillationLoss(
            temperature: 2, alpha: 0.6, logitStandardization: true)
        var g1 = [Float](repeating: 0, count: s.count)
        let expected = try evaluate(plain, s, gradient: &g1)
        let (value, gradient) = try standardized.evaluate(
            studentLogits: s, teacherLogits: t, labels: labels.map(Int.init), classes: classes)
        XCTAssertEqual(value, expected)
        XCTAssertEqual(gradient, g1)
        XCTAssertThrowsError(try DistillationLoss(objective: .mse, logitStandardization: true))
    }

    /// A shift and a positive scale of the logits change nothing (the point of standardising).
    func testInvariantToShiftAndScale() throws {
        let loss = try DistillationLoss(temperature: 4, alpha: 1)
        var g1 = [Float](repeating: 0, count: s.count)
        var g2 = g1
        let a = try evaluate(loss, s, gradient: &g1)
        let b = try evaluate(loss, s.map { 3 * $0 + 7 }, gradient: &g2)
        assertClose(b.loss, Double(a.loss), rtol: 1e-4)
    }
}

final class TemperatureGradientTests: XCTestCase {
    /// d(T^2 KL)/dT against central differences of the soft term in T, computed in Double by the
    /// reference (`referenceKD`): the Float loss cannot resolve a step small enough at T = 12.
    func testAgainstCentralDifferences() throws {
        let rows = 5
        let classes = 7
        let s = fixtureValues(rows * classes, seed: 41, scale: 3)
        let t = fixtureValues(rows * classes, seed: 42, scale: 4)
        func soft(_ T: Double) -> Double {
            referenceKD(
                student: s, teacher: t, labels: nil, classes: classes, temperature: T, alpha: 1
            ).loss
        }
        for T in [0.7, 1.0, 2.5, 4.0, 12.0] {
            let analytic = try s.withUnsafeBufferPointer { sb in
                try t.withUnsafeBufferPointer { tb in
                    try softTermTemperatureGradient(
                        studentLogits: sb, teacherLogits: tb, rows: rows, classes: classes,
                        temperature: Float(T))
                }
            }
            let h = 1e-4 * T
            let numeric = (soft(T + h) - soft(T - h)) / (2 * h)
            // The loss itself agrees with the reference to Float precision.
            let loss = try DistillationLoss(temperature: Float(T), alpha: 1)
            let value = try loss.evaluate(
                studentLogits: s, teacherLogits: t, labels: nil, classes: classes
            ).value
            assertClose(value.softLoss, soft(T), rtol: 2e-6, atol: 0, "soft term at T=\(T)")
            assertClose(analytic, numeric, rtol: 1e-6, atol: 1e-9, "T=\(T)")
        }
    }
}
