import DistillTestSupport
import XCTest

@testable import DistillLosses

/// A Double reference of the KD loss for one configuration: used for large and extreme inputs
/// where no golden file is practical. Mirrors Tests/Reference/losses_reference.py.
func referenceKD(
    student s: [Float], teacher t: [Float], labels: [Int]?, classes c: Int,
    temperature T: Double, alpha: Double
) -> (loss: Double, gradient: [Double]) {
    let n = s.count / c
    var loss = 0.0
    var gradient = [Double](repeating: 0, count: s.count)
    let labelled = labels?.filter { $0 >= 0 }.count ?? 0
    let a = labelled > 0 ? alpha : 1
    for r in 0..<n {
        let sr = s[(r * c)..<((r + 1) * c)].map(Double.init)
        let tr = t[(r * c)..<((r + 1) * c)].map(Double.init)
        func logSoftmax(_ z: [Double], _ T: Double) -> [Double] {
            let m = z.max()!
            let lz = log(z.reduce(0) { $0 + exp(($1 - m) / T) })
            return z.map { ($0 - m) / T - lz }
        }
        let lq = logSoftmax(sr, T)
        let lp = logSoftmax(tr, T)
        let l1 = logSoftmax(sr, 1)
        var kl = 0.0
        for i in 0..<c where exp(lp[i]) > 0 { kl += exp(lp[i]) * (lp[i] - lq[i]) }
        loss += a * T * T * kl / Double(n)
        for i in 0..<c { gradient[r * c + i] += a * T * (exp(lq[i]) - exp(lp[i])) / Double(n) }
        if let y = labels?[r], y >= 0 {
            loss += (1 - a) * -l1[y] / Double(labelled)
            for i in 0..<c {
                gradient[r * c + i] += (1 - a) * (exp(l1[i]) - (i == y ? 1 : 0)) / Double(labelled)
            }
        }
    }
    return (loss, gradient)
}

final class DistillationLossTests: XCTestCase {
    let rows = 5, classes = 6
    lazy var student = fixtureValues(rows * classes, seed: 1, scale: 3)
    lazy var teacher = fixtureValues(rows * classes, seed: 2, scale: 4)
    lazy var member = fixtureValues(rows * classes, seed: 3, scale: 4)
    let labels: [Int32] = [0, 5, 2, 3, 1]

    /// Evaluates `loss` on the fixture with the given student logits.
    func evaluate(
        _ loss: DistillationLoss, _ s: [Float], teacherKind: String = "logits",
        labels: [Int32]?, mask: [Bool]? = nil, gradient: inout [Float]
    ) throws -> DistillationLossValue {
        let probabilities =
            try softmax(logits: Array(teacher[0..<classes]), temperature: 1)
            // first row normalised, others raw (renormalised by the loss)
            + teacher[classes...].map { abs($0) }
        return try s.withUnsafeBufferPointer { sb in
            try teacher.withUnsafeBufferPointer { tb in
                try member.withUnsafeBufferPointer { mb in
                    try probabilities.withUnsafeBufferPointer { pb in
                        try gradient.withUnsafeMutableBufferPointer { g in
                            try withOptional(labels) { y in
                                try withOptional(mask) { m in
                                    let t: TeacherOutput =
                                        teacherKind == "probabilities"
                                        ? .probabilities(pb)
                                        : teacherKind == "ensemble"
                                            ? .ensembleLogits([tb, mb]) : .logits(tb)
                                    return try loss.evaluate(
                                        studentLogits: sb, teacher: t, labels: y, mask: m,
                                        rows: rows, classes: classes, gradient: g)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Central differences of the loss value against the returned gradient, for every objective,
    /// teacher kind, masking, the ignore label, unlabelled rows and soft-only distillation.
    /// Step 2e-2 on logits of scale ~3: the truncation error (h^2/6 * |f'''| ~ 1e-4 at most here)
    /// and the rounding of the Float loss (~1e-7 * L / 2h ~ 2e-5) bound the tolerance.
    func testGradientsMatchCentralDifferences() throws {
        struct Setup {
            let name: String
            let loss: DistillationLoss
            let teacher: String
            let labels: [Int32]?
            let mask: [Bool]?
        }
        let setups = [
            Setup(
                name: "kl", loss: try DistillationLoss(temperature: 3, alpha: 0.7),
                teacher: "logits", labels: labels, mask: nil),
            Setup(
                name: "kl T<1", loss: try DistillationLoss(temperature: 0.5, alpha: 0.3),
                teacher: "logits", labels: labels, mask: nil),
            Setup(
                name: "soft only", loss: try DistillationLoss(temperature: 4, alpha: 1),
                teacher: "logits", labels: nil, mask: nil),
            Setup(
                name: "masked", loss: try DistillationLoss(temperature: 2, alpha: 0.6),
                teacher: "logits", labels: labels,
                mask: [true, false, true, false, true]),
            Setup(
                name: "ignore label",
                loss: try DistillationLoss(temperature: 2, alpha: 0.6, ignoreLabel: -100),
                teacher: "logits", labels: [0, -100, 2, -100, 1], mask: nil),
            Setup(
                name: "unlabelled rows", loss: try DistillationLoss(temperature: 4, alpha: 0.7),
                teacher: "logits",
                labels: [0, -1, -1, 3, -1], mask: nil),
            Setup(
                name: "unlabelled rows, hard term over all rows",
                loss: try DistillationLoss(temperature: 4, alpha: 0.7, hardReduction: .all),
                teacher: "logits", labels: [0, -1, -1, 3, -1],
                mask: [true, true, false, true, true]),
            Setup(
                name: "standardized, hard term over all rows",
                loss: try DistillationLoss(
                    temperature: 2, alpha: 0.6, logitStandardization: true, hardReduction: .all),
                teacher: "logits", labels: [-1, 2, -1, -1, 4], mask: nil),
            Setup(
                name: "probabilities", loss: try DistillationLoss(temperature: 5, alpha: 0.7),
                teacher: "probabilities",
                labels: labels, mask: nil),
            Setup(
                name: "ensemble", loss: try DistillationLoss(temperature: 3, alpha: 0.5),
                teacher: "ensemble",
                labels: labels, mask: nil),
            Setup(
                name: "hard", loss: try DistillationLoss(alpha: 0.5, objective: .hard),
                teacher: "logits", labels: labels, mask: nil),
            Setup(
                name: "mse", loss: try DistillationLoss(alpha: 0.5, objective: .mse),
                teacher: "logits", labels: labels, mask: nil),
            Setup(
                name: "mse masked", loss: try DistillationLoss(alpha: 0.8, objective: .mse),
                teacher: "logits", labels: labels,
                mask: [false, true, true, true, false]),
        ]
        for setup in setups {
            for lanes in [true, false] {
                var setupLoss = setup.loss
                setupLoss.usesLaneKernel = lanes
                let setup = Setup(
                    name: "\(setup.name) lanes \(lanes)", loss: setupLoss, teacher: setup.teacher,
                    labels: setup.labels, mask: setup.mask)
                var gradient = [Float](repeating: .nan, count: student.count)
                _ = try evaluate(
                    setup.loss, student, teacherKind: setup.teacher, labels: setup.labels,
                    mask: setup.mask,
                    gradient: &gradient)
                var scratch = gradient
                let numeric = try centralDifferences(student, step: 2e-2) { s in
                    Double(
                        try evaluate(
                            setup.loss, s, teacherKind: setup.teacher, labels: setup.labels,
                            mask: setup.mask, gradient: &scratch
                        ).loss)
                }
                assertClose(gradient, numeric, rtol: 1e-3, atol: 2e-4, setup.name)
                if let mask = setup.mask {
                    for r in 0..<rows where !mask[r] {
                        XCTAssertEqual(
                            Array(gradient[(r * classes)..<((r + 1) * classes)]),
                            [Float](repeating: 0, count: classes),
                            "\(setup.name): masked row \(r) has a gradient")
                    }
                }
            }
        }
    }

    /// SPEC.md "Why T^2": the soft term's gradient times T^2 approaches (s - t - mean(s - t)) / C
    /// for large T (within a few percent at T = 10, 20, 50), while without the factor it shrinks
    /// as 1/T^2.
    /// The hard term's reduction: over the labelled rows (default), or over every counted row,
    /// where the same sum of cross-entropies is divided by the counted rows instead.
    func testHardReductionOverAllRows() throws {
        let labels: [Int32] = [2, -1, -1, -1, 4]  // 2 labelled of 5
        var g1 = [Float](repeating: 0, count: rows * classes)
        var g2 = g1
        let byLabelled = try evaluate(
            try DistillationLoss(temperature: 3, alpha: 0.6), student, labels: labels, gradient: &g1
        )
        let byAll = try evaluate(
            try DistillationLoss(temperature: 3, alpha: 0.6, hardReduction: .all), student,
            labels: labels,
            gradient: &g2)
        assertClose(
            try XCTUnwrap(byAll.hardLoss), try XCTUnwrap(byLabelled.hardLoss) * 2 / 5, rtol: 1e-6)
        assertClose(byAll.softLoss, byLabelled.softLoss, rtol: 1e-6)
        assertClose(byAll.loss, 0.6 * byAll.softLoss + 0.4 * byAll.hardLoss!, rtol: 1e-6)
        // Unlabelled rows get the same gradient either way; labelled rows' hard part shrinks by 2/5.
        assertClose(
            Array(g2[classes..<(4 * classes)]), Array(g1[classes..<(4 * classes)]), rtol: 1e-6,
            atol: 1e-8)
        XCTAssertNotEqual(Array(g2[0..<classes]), Array(g1[0..<classes]))
    }

    func testTemperatureSquaredKeepsTheGradientScale() throws {
        let c = 10
        let s = fixtureValues(c, seed: 11, scale: 2)
        let t = fixtureValues(c, seed: 12, scale: 2)
        let d = zip(s, t).map { Double($0) - Double($1) }
        let meanD = d.reduce(0, +) / Double(c)
        let limit = d.map { ($0 - meanD) / Double(c) }
        let limitNorm = limit.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var previousBareNorm: Double?
        var previousT: Double?
        for T: Float in [10, 20, 50] {
            let loss = try DistillationLoss(temperature: T, alpha: 1)
            let (_, gradient) = try loss.evaluate(
                studentLogits: s, teacherLogits: t, labels: nil, classes: c)
            let g = gradient.map(Double.init)  // = T^2 * d KL / ds = T (q - p)
            let error = zip(g, limit).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            XCTAssertLessThan(
                error / limitNorm, 0.05,
                "T=\(T): with T^2 the gradient is off its limit by \(error / limitNorm)")
            let bareNorm = g.reduce(0) { $0 + $1 * $1 }.squareRoot() / Double(T * T)
            if let previousBareNorm, let previousT {
                let expectedRatio = (Double(T) / previousT) * (Double(T) / previousT)
                assertClose(
                    previousBareNorm / bareNorm, expectedRatio, rtol: 0.05, atol: 0,
                    "without T^2 the gradient should shrink as 1/T^2")
            }
            previousBareNorm = bareNorm
            previousT = Double(T)
        }
    }

    /// Finite loss and gradient for logits of magnitude 1e4 and differences of 1e30, over
    /// temperatures from 0.05 to 1000, checked against the Double reference where it is finite.
    func testStableForExtremeLogitsAndTemperatures() throws {
        let cases: [([Float], [Float])] = [
            ([1e4, -1e4, 0, 5e3], [-1e4, 1e4, 3, 0]),
            ([1e30, -1e30, 0, 1], [-1e30, 1e30, 1, 0]),
            ([-3e4, -3e4, -3e4, -3e4], [2e4, 2e4, 2e4, 2e4]),
        ]
        for (s, t) in cases {
            for T: Float in [0.05, 0.3, 1, 4, 20, 1000] {
                for alpha: Float in [0, 0.5, 1] {
                    for lanes in [true, false] {
                        var loss = try DistillationLoss(temperature: T, alpha: alpha)
                        loss.usesLaneKernel = lanes
                        let (value, gradient) = try loss.evaluate(
                            studentLogits: s, teacherLogits: t, labels: [2], classes: 4)
                        XCTAssertTrue(
                            value.loss.isFinite,
                            "loss \(value.loss) for s=\(s) t=\(t) T=\(T) alpha=\(alpha)")
                        XCTAssertTrue(
                            gradient.allSatisfy(\.isFinite),
                            "gradient \(gradient) for s=\(s) T=\(T)")
                        let reference = referenceKD(
                            student: s, teacher: t, labels: [2], classes: 4,
                            temperature: Double(T), alpha: Double(alpha))
                        if reference.loss.isFinite && abs(reference.loss) < 1e30 {
                            assertClose(
                                value.loss, reference.loss, rtol: 1e-5, atol: 1e-5,
                                "s=\(s) T=\(T) alpha=\(alpha)")
                            assertClose(
                                gradient, reference.gradient, rtol: 1e-4, atol: 1e-5,
                                "s=\(s) T=\(T) lanes \(lanes)")
                        }
                    }
                }
            }
        }
    }

    /// C from 1 to 262,144, against the Double reference; 4 rows of 262,144 take the threaded path.
    func testClassCountsFromOneToQuarterMillion() throws {
        let loss = try DistillationLoss(temperature: 2, alpha: 0.5)
        let (one, gradientOne) = try loss.evaluate(
            studentLogits: [3], teacherLogits: [-2], labels: [0], classes: 1)
        XCTAssertEqual(one.loss, 0)
        XCTAssertEqual(gradientOne, [0])
        for (rows, c) in [(3, 1000), (4, 262_144)] {
            let s = fixtureValues(rows * c, seed: 5, scale: 8)
            let t = fixtureValues(rows * c, seed: 6, scale: 8)
            let labels = (0..<rows).map { ($0 * 7919) % c }
            let (value, gradient) = try loss.evaluate(
                studentLogits: s, teacherLogits: t, labels: labels, classes: c)
            let reference = referenceKD(
                student: s, teacher: t, labels: labels, classes: c, temperature: 2, alpha: 0.5)
            assertClose(value.loss, reference.loss, rtol: 1e-5, atol: 0, "C=\(c)")
            assertClose(gradient, reference.gradient, rtol: 1e-4, atol: 1e-10, "C=\(c)")
        }
    }

    /// The row kernel is compiled once per way of finding the T = 1 exponentials of the hard term
    /// (none, T = 1, whole T = 2, 3, 4, 8 by powers, any other T by its own exponential): each
    /// against the Double reference, with and without labels, on rows of full vectors and a partial
    /// one (C = 1,003).
    func testEveryRowKernelAgainstTheReference() throws {
        let rows = 3
        let c = 1003
        let s = fixtureValues(rows * c, seed: 7, scale: 6)
        let t = fixtureValues(rows * c, seed: 8, scale: 6)
        for T: Float in [0.5, 1, 2, 2.5, 3, 4, 8, 20] {
            for labels in [[4, 1002, 517], nil] {
                let loss = try DistillationLoss(temperature: T, alpha: labels == nil ? 1 : 0.6)
                let (value, gradient) = try loss.evaluate(
                    studentLogits: s, teacherLogits: t, labels: labels, classes: c)
                let reference = referenceKD(
                    student: s, teacher: t, labels: labels, classes: c,
                    temperature: Double(T), alpha: labels == nil ? 1 : 0.6)
                assertClose(
                    value.loss, reference.loss, rtol: 2e-6, atol: 0,
                    "T=\(T) labels \(labels != nil)")
                assertClose(
                    gradient, reference.gradient, rtol: 1e-4, atol: 1e-9,
                    "T=\(T) labels \(labels != nil)")
            }
        }
    }

    func testRejectsBadInputsWithClearErrors() throws {
        XCTAssertThrowsError(try DistillationLoss(temperature: 0)) {
            XCTAssertEqual($0 as? LossError, .invalidTemperature(0))
        }
        XCTAssertThrowsError(try DistillationLoss(temperature: -1))
        XCTAssertThrowsError(try DistillationLoss(temperature: .nan))
        XCTAssertThrowsError(try DistillationLoss(temperature: .infinity))
        XCTAssertThrowsError(try DistillationLoss(alpha: -0.1)) {
            XCTAssertEqual($0 as? LossError, .invalidAlpha(-0.1))
        }
        XCTAssertThrowsError(try DistillationLoss(alpha: 1.5))
        let loss = try DistillationLoss(temperature: 2, alpha: 0.5)
        XCTAssertThrowsError(
            try loss.evaluate(
                studentLogits: [1, 2, 3], teacherLogits: [1, 2, 3], labels: [3], classes: 3)
        ) {
            XCTAssertEqual($0 as? LossError, .labelOutOfRange(row: 0, label: 3, classes: 3))
            XCTAssertEqual("\($0)", "label 3 at row 0 is outside [0, 3)")
        }
        XCTAssertThrowsError(
            try loss.evaluate(
                studentLogits: [1, 2, 3], teacherLogits: [1, 2, 3], labels: [-7], classes: 3))
        XCTAssertThrowsError(
            try loss.evaluate(
                studentLogits: [1, .nan, 3], teacherLogits: [1, 2, 3], labels: [0], classes: 3)
        ) {
            XCTAssertEqual("\($0)", "student logits has a non-finite value nan at row 0, column 1")
        }
        XCTAssertThrowsError(
            try loss.evaluate(
                studentLogits: [1, 2, 3], teacherLogits: [1, 2, .infinity], labels: [0], classes: 3)
        ) {
            guard case .nonFinite("teacher logits", 0, 2, _)? = $0 as? LossError else {
                return XCTFail("\($0)")
            }
        }
        XCTAssertThrowsError(
            try loss.evaluate(
                studentLogits: [1, 2, 3], teacherLogits: [1, 2], labels: [0], classes: 3)
        ) {
            guard case .shapeMismatch? = $0 as? LossError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(
            try loss.evaluate(
                studentLogits: [1, 2, 3], teacherLogits: [1, 2, 3], labels: [0, 1], classes: 3))
        XCTAssertThrowsError(
            try loss.evaluate(
                studentLogits: [1, 2, 3], teacherLogits: [1, 2, 3], labels: nil, classes: 3)
        ) {
            XCTAssertEqual($0 as? LossError, .labelsRequired)
        }
        // Probabilities must be non-negative with a positive sum.
        let negative: [Float] = [0.5, -0.1, 0.6]
        try negative.withUnsafeBufferPointer { p in
            try [Float](repeating: 0, count: 3).withUnsafeBufferPointer { s in
                XCTAssertThrowsError(
                    try loss.evaluate(
                        studentLogits: s, teacher: .probabilities(p), labels: nil,
                        rows: 1, classes: 3)
                ) { _ in }
            }
        }
    }

    /// The standalone functions agree with the combined loss: CE is alpha = 0, and KL is the soft
    /// term without T^2 (gradient divided by T^2).
    func testStandaloneCrossEntropyAndKL() throws {
        var ceGradient = [Float](repeating: 0, count: student.count)
        var klGradient = ceGradient
        let ce = try student.withUnsafeBufferPointer { s in
            try labels.withUnsafeBufferPointer { y in
                try ceGradient.withUnsafeMutableBufferPointer {
                    try crossEntropy(
                        logits: s, labels: y, rows: rows, classes: classes, gradient: $0)
                }
            }
        }
        let kl = try student.withUnsafeBufferPointer { s in
            try teacher.withUnsafeBufferPointer { t in
                try klGradient.withUnsafeMutableBufferPointer {
                    try klDivergence(
                        teacherLogits: t, studentLogits: s, rows: rows, classes: classes,
                        temperature: 3, gradient: $0)
                }
            }
        }
        let reference0 = referenceKD(
            student: student, teacher: teacher, labels: labels.map(Int.init), classes: classes,
            temperature: 3, alpha: 0)
        assertClose(ce, reference0.loss, rtol: 1e-6)
        assertClose(ceGradient, reference0.gradient, rtol: 1e-5, atol: 1e-7)
        let reference1 = referenceKD(
            student: student, teacher: teacher, labels: nil, classes: classes, temperature: 3,
            alpha: 1)
        assertClose(kl, reference1.loss / 9, rtol: 1e-5)
        assertClose(klGradient, reference1.gradient.map { $0 / 9 }, rtol: 1e-4, atol: 1e-7)
        // The ignore label removes a row from the mean.
        let padded: [Int32] = [0, -100, 2, 3, 1]
        let ceIgnored = try student.withUnsafeBufferPointer { s in
            try padded.withUnsafeBufferPointer { y in
                try crossEntropy(
                    logits: s, labels: y, rows: rows, classes: classes, ignoreLabel: -100)
            }
        }
        var kept = student
        kept.removeSubrange(classes..<(2 * classes))
        let reference2 = referenceKD(
            student: kept, teacher: kept, labels: [0, 2, 3, 1], classes: classes, temperature: 1,
            alpha: 0)
        assertClose(ceIgnored, reference2.loss, rtol: 1e-6)
    }
}
