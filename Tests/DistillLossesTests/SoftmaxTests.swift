import DistillCore
import DistillTestSupport
import XCTest

@testable import DistillLosses

final class SoftmaxTests: XCTestCase {
    /// The worked examples of SPEC.md ("values rounded to 3 places").
    func testSpecWorkedExamples() throws {
        assertClose(
            try softmax(logits: [1.1, 0.2, 0.2], temperature: 1), [0.552, 0.224, 0.224], rtol: 0,
            atol: 5e-4)
        assertClose(
            try softmax(logits: [2.9, 0.1, 0.23], temperature: 1), [0.885, 0.054, 0.061], rtol: 0,
            atol: 5e-4)
        assertClose(
            try softmax(logits: [2.9, 0.1, 0.23], temperature: 3), [0.554, 0.218, 0.228], rtol: 0,
            atol: 5e-4)
    }

    /// Softmax and log-softmax against a Double computation, over temperatures and odd widths
    /// (1, 7, 8, 9, 1,025 classes exercise the 8-lane tails and the 1,024-element blocks).
    func testAgainstDoubleReference() throws {
        for classes in [1, 7, 8, 9, 1025] {
            for temperature: Float in [0.05, 0.5, 1, 3, 1000] {
                let rows = 3
                let z = fixtureValues(rows * classes, seed: UInt64(classes), scale: 20)
                var p = [Float](repeating: 0, count: z.count)
                var lp = p
                try z.withUnsafeBufferPointer { zb in
                    try p.withUnsafeMutableBufferPointer {
                        try softmax(
                            logits: zb, rows: rows, classes: classes, temperature: temperature,
                            into: $0)
                    }
                    try lp.withUnsafeMutableBufferPointer {
                        try logSoftmax(
                            logits: zb, rows: rows, classes: classes, temperature: temperature,
                            into: $0)
                    }
                }
                var expectedP: [Double] = []
                var expectedLP: [Double] = []
                for r in 0..<rows {
                    let row = z[(r * classes)..<((r + 1) * classes)].map {
                        Double($0) / Double(temperature)
                    }
                    let m = row.max()!
                    let logZ = log(row.reduce(0) { $0 + exp($1 - m) })
                    expectedLP += row.map { $0 - m - logZ }
                    expectedP += row.map { exp($0 - m - logZ) }
                }
                // A probability exp(x) inherits the rounding of its Float argument x = (z - max) / T:
                // relative error up to |x| * 2^-23 plus a few ulps. The largest |x| kept above
                // Float's range is 87, so rtol = 87 * 2^-23 + 4 * 2^-24 bounds it.
                assertClose(
                    p, expectedP, rtol: 87 * 0x1p-23 + 4 * 0x1p-24, atol: 1e-37,
                    "C=\(classes) T=\(temperature)")
                // log-softmax values scale with |z|/T, so the absolute tolerance follows that scale.
                assertClose(
                    lp, expectedLP, rtol: 2e-6, atol: 1e-6 * (20 / Double(temperature) + 1),
                    "C=\(classes) T=\(temperature)")
            }
        }
    }

    func testRejectsBadInput() {
        XCTAssertThrowsError(try softmax(logits: [1, 2], temperature: 0)) {
            XCTAssertEqual($0 as? LossError, .invalidTemperature(0))
        }
        XCTAssertThrowsError(try softmax(logits: [1, .nan, 3], temperature: 1)) {
            guard case .nonFinite(_, 0, 1, _)? = $0 as? LossError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try softmax(logits: [1, .infinity], temperature: 1))
    }

    /// fastExp is within 2 ulps of the correctly rounded exp over the range the kernels use.
    func testFastExpAccuracy() {
        var worst: Float = 0
        var x: Float = -87
        while x <= 88 {  // the kernels use x <= 0; the range up to 88 is supported
            let got = fastExp(x)
            let exact = Float(exp(Double(x)))
            let ulps = abs(got - exact) / exact.ulp
            worst = max(worst, ulps)
            x += 0.000_731
        }
        XCTAssertLessThanOrEqual(worst, 2, "worst error \(worst) ulps")
        // Below the floor the result is the floor's, about 1.2e-38: negligible beside sums >= 1.
        XCTAssertLessThan(fastExp(-Float.infinity), 1.3e-38)
        XCTAssertLessThan(fastExp(-1000), 1.3e-38)
        XCTAssertEqual(fastExp(0), 1)
    }

    /// fastExp2 is within 1 ulp of the correctly rounded 2^x over [-126, 127], and exact at whole x.
    func testFastExp2Accuracy() {
        var worst: Float = 0
        var x: Float = -126
        while x <= 127 {
            let got = fastExp2(Vec(repeating: x))[0]
            let exact = Float(exp2(Double(x)))
            worst = max(worst, abs(got - exact) / exact.ulp)
            x += 0.000_917
        }
        XCTAssertLessThanOrEqual(worst, 1, "worst error \(worst) ulps")
        for n in -126...127 {
            XCTAssertEqual(fastExp2(Vec(repeating: Float(n)))[0], Float(exp2(Double(n))))
        }
        XCTAssertEqual(fastExp2(Vec(repeating: -.infinity))[0], Float.leastNormalMagnitude)
        XCTAssertEqual(fastExp2(Vec(repeating: -1000))[0], Float.leastNormalMagnitude)
    }
}

final class FastLogTests: XCTestCase {
    /// fastLog is within 2 ulps of the correctly rounded log (or 2e-7 absolute near 1, where the
    /// result is tiny) over the normal range.
    func testFastLogAccuracy() {
        var worst: Float = 0
        var x: Float = 1.2e-38
        while x < 3e38 {
            let got = fastLog(Vec(repeating: x))[0]
            let exact = Float(log(Double(x)))
            let error = abs(got - exact)
            if error > 2e-7 { worst = max(worst, error / exact.ulp) }
            x *= 1.000_37
        }
        XCTAssertLessThanOrEqual(worst, 2, "worst error \(worst) ulps")
        XCTAssertEqual(fastLog(Vec(repeating: 1))[0], 0)
    }
}

final class WholeTemperatureTests: XCTestCase {
    func testPowerAndWholeTemperatures() {
        XCTAssertEqual(wholeTemperature(1 / 4), 4)
        XCTAssertEqual(wholeTemperature(1 / 20), 20)
        XCTAssertEqual(wholeTemperature(1 / 32), 32)
        XCTAssertNil(wholeTemperature(1 / 2.5))
        XCTAssertNil(wholeTemperature(1))
        XCTAssertNil(wholeTemperature(1 / 33))
        for n in 1...32 {
            let v = Vec(0.3, 0.5, 0.9, 1, 1.01, 0.05, 0.999, 0.7)
            let got = power(v, n)
            for k in 0..<8 {
                let exact = pow(Double(v[k]), Double(n))
                XCTAssertEqual(
                    Double(got[k]), exact, accuracy: exact * Double(n) * 1.2e-7 + 1e-37, "v^\(n)")
            }
        }
    }
}
