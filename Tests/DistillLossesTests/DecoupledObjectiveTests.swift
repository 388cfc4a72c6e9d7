import DistillTestSupport
import Foundation
import XCTest

@testable import DistillLosses

/// DKD and DIST: values against float64 references written from the papers' code, gradients
/// against central differences of the value.
final class DecoupledObjectiveTests: XCTestCase {
    let (rows, classes) = (4, 5)

    func loss(_ objective: DistillationLoss.Objective, alpha: Float = 1, temperature: Float = 2)
        throws -> DistillationLoss
    {
        var loss = try DistillationLoss(
            temperature: temperature, alpha: alpha, objective: objective)
        loss.dkd = DKDWeights(alpha: 1, beta: 8)
        loss.dist = DISTWeights(beta: 2, gamma: 3)
        return loss
    }

    func softmax(_ x: [Double], _ T: Double) -> [Double] {
        let m = x.max()!
        let e = x.map { exp(($0 - m) / T) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// mdistiller's DKD: binary KL of (p_y, 1 - p_y), and the KL of the softmaxes with the target
    /// logit pushed down by 1000 (so it takes no mass), times T^2, averaged over rows.
    func dkdReference(_ s: [Double], _ t: [Double], targets: [Int], T: Double) -> Double {
        var total = 0.0
        for r in 0..<rows {
            let (sr, tr) = (
                Array(s[(r * classes)..<((r + 1) * classes)]),
                Array(t[(r * classes)..<((r + 1) * classes)])
            )
            let y = targets[r]
            let (p, q) = (softmax(tr, T), softmax(sr, T))
            let tckd = p[y] * log(p[y] / q[y]) + (1 - p[y]) * log((1 - p[y]) / (1 - q[y]))
            let shift = { (x: [Double]) in
                x.enumerated().map { $0.offset == y ? $0.element - 1000 * T : $0.element }
            }
            let (ph, qh) = (softmax(shift(tr), T), softmax(shift(sr), T))
            var nckd = 0.0
            for j in 0..<classes where j != y { nckd += ph[j] * log(ph[j] / qh[j]) }
            total += T * T * (tckd + 8 * nckd)
        }
        return total / Double(rows)
    }

    /// DIST's code: 1 - mean Pearson over rows (beta) and over columns (gamma), times T^2.
    func distReference(_ s: [Double], _ t: [Double], T: Double) -> Double {
        func pearson(_ a: [Double], _ b: [Double]) -> Double {
            let (ma, mb) = (a.reduce(0, +) / Double(a.count), b.reduce(0, +) / Double(b.count))
            let (u, v) = (a.map { $0 - ma }, b.map { $0 - mb })
            let dot = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
            let norms =
                u.reduce(0) { $0 + $1 * $1 }.squareRoot()
                * v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return dot / (norms + 1e-8)
        }
        let q = (0..<rows).map { softmax(Array(s[($0 * classes)..<(($0 + 1) * classes)]), T) }
        let p = (0..<rows).map { softmax(Array(t[($0 * classes)..<(($0 + 1) * classes)]), T) }
        let inter = (0..<rows).reduce(0.0) { $0 + pearson(q[$1], p[$1]) } / Double(rows)
        let intra =
            (0..<classes).reduce(0.0) { acc, j in acc + pearson(q.map { $0[j] }, p.map { $0[j] }) }
            / Double(classes)
        return T * T * (2 * (1 - inter) + 3 * (1 - intra))
    }

    func testValuesMatchTheReferences() throws {
        let student = fixtureValues(rows * classes, seed: 11, scale: 2)
        let teacher = fixtureValues(rows * classes, seed: 12, scale: 3)
        let (s, t) = (student.map(Double.init), teacher.map(Double.init))
        // Rows 1 and 3 have no label: DKD's target is the teacher's top class there.
        let labels = [2, -1, 0, -1]
        let targets = (0..<rows).map { r in
            labels[r] >= 0
                ? labels[r] : (0..<classes).max { t[r * classes + $0] < t[r * classes + $1] }!
        }
        let dkd = try loss(.dkd).evaluate(
            studentLogits: student, teacherLogits: teacher, labels: labels, classes: classes)
        assertClose([dkd.value.loss], [dkdReference(s, t, targets: targets, T: 2)], rtol: 1e-5)
        let dist = try loss(.dist).evaluate(
            studentLogits: student, teacherLogits: teacher, labels: nil, classes: classes)
        assertClose([dist.value.loss], [distReference(s, t, T: 2)], rtol: 1e-5)
        // A student equal to its teacher: DIST's correlations are 1, its loss 0 (to the 1e-8).
        let same = try loss(.dist).evaluate(
            studentLogits: teacher, teacherLogits: teacher, labels: nil, classes: classes)
        XCTAssertEqual(same.value.loss, 0, accuracy: 1e-5)
        // alpha mixes in the cross-entropy exactly as for kl.
        let ce = try loss(.kl, alpha: 0).evaluate(
            studentLogits: student, teacherLogits: teacher, labels: labels, classes: classes)
        let mixed = try loss(.dkd, alpha: 0.25).evaluate(
            studentLogits: student, teacherLogits: teacher, labels: labels, classes: classes)
        assertClose(
            [mixed.value.loss], [0.25 * Double(dkd.value.loss) + 0.75 * Double(ce.value.loss)],
            rtol: 1e-5)
    }

    func testGradientsMatchCentralDifferences() throws {
        let student = fixtureValues(rows * classes, seed: 13, scale: 2)
        let teacher = fixtureValues(rows * classes, seed: 14, scale: 3)
        let labels = [1, -1, 4, 2]
        for (objective, alpha) in [
            (DistillationLoss.Objective.dkd, Float(0.6)), (.dist, 0.6), (.dist, 1),
        ] {
            let l = try loss(objective, alpha: alpha, temperature: 3)
            let (_, gradient) = try l.evaluate(
                studentLogits: student, teacherLogits: teacher, labels: labels, classes: classes)
            let h: Float = 1e-2
            var differences: [Double] = []
            for i in student.indices {
                var (up, down) = (student, student)
                up[i] += h
                down[i] -= h
                let a = try l.evaluate(
                    studentLogits: up, teacherLogits: teacher, labels: labels, classes: classes)
                let b = try l.evaluate(
                    studentLogits: down, teacherLogits: teacher, labels: labels, classes: classes)
                differences.append(
                    (Double(a.value.loss) - Double(b.value.loss)) / Double(up[i] - down[i]))
            }
            assertClose(gradient, differences, rtol: 2e-3, atol: 2e-4)
        }
    }

    /// The scaled KD control: `softScale` multiplies the kl soft term and its gradient, the
    /// hard term untouched.
    func testSoftScaleMultipliesTheSoftTerm() throws {
        let student = fixtureValues(rows * classes, seed: 15, scale: 2)
        let teacher = fixtureValues(rows * classes, seed: 16, scale: 3)
        let labels = [0, 1, -1, 3]
        var scaled = try loss(.kl, alpha: 0.5, temperature: 4)
        scaled.softScale = 8
        let (a, ga) = try scaled.evaluate(
            studentLogits: student, teacherLogits: teacher, labels: labels, classes: classes)
        let (soft, gs) = try loss(.kl, alpha: 1, temperature: 4).evaluate(
            studentLogits: student, teacherLogits: teacher, labels: labels, classes: classes)
        let (hard, gh) = try loss(.kl, alpha: 0, temperature: 4).evaluate(
            studentLogits: student, teacherLogits: teacher, labels: labels, classes: classes)
        assertClose(
            [a.loss], [0.5 * 8 * Double(soft.loss) + 0.5 * Double(hard.loss)], rtol: 1e-5)
        assertClose(
            ga, zip(gs, gh).map { 0.5 * 8 * Double($0) + 0.5 * Double($1) }, rtol: 1e-4, atol: 1e-6)
        XCTAssertEqual(try scaled.with(temperature: 2).softScale, 8)
    }

    /// `scalingSoftTerm(by: f)` (the soft-term warm-up) weighs the soft term f times, the hard
    /// term untouched: at 0 the loss is the hard term's alone, and the value and gradient at f are
    /// those at 0 plus f times the difference to those at 1, for kl, DKD and DIST alike; `.hard` and `.mse` have no weight to scale.
    func testScalingTheSoftTermIsLinearInItsFactor() throws {
        let student = fixtureValues(rows * classes, seed: 17, scale: 2)
        let teacher = fixtureValues(rows * classes, seed: 18, scale: 3)
        let labels = [0, 1, -1, 3]
        for objective in [DistillationLoss.Objective.kl, .dkd, .dist] {
            let full = try loss(objective, alpha: 0.7, temperature: 4)
            XCTAssertTrue(full.softTermIsWeighted)
            func at(_ f: Float) throws -> (value: Double, gradient: [Double]) {
                let (v, g) = try full.scalingSoftTerm(by: f).evaluate(
                    studentLogits: student, teacherLogits: teacher, labels: labels,
                    classes: classes)
                return (Double(v.loss), g.map(Double.init))
            }
            let (zero, one, quarter) = (try at(0), try at(1), try at(0.25))
            XCTAssertGreaterThan(abs(one.value - zero.value), 1e-3, "\(objective)")
            // At 0 only the hard term is left, at its own weight 1 - alpha: it is not scaled.
            let (hard, hardGradient) = try loss(objective, alpha: 0, temperature: 4).evaluate(
                studentLogits: student, teacherLogits: teacher, labels: labels, classes: classes)
            assertClose([zero.value], [0.3 * Double(hard.loss)], rtol: 1e-5)
            assertClose(
                zero.gradient, hardGradient.map { 0.3 * Double($0) }, rtol: 1e-4, atol: 1e-6)
            assertClose(
                [quarter.value], [zero.value + 0.25 * (one.value - zero.value)], rtol: 1e-5)
            assertClose(
                quarter.gradient, zip(zero.gradient, one.gradient).map { $0 + 0.25 * ($1 - $0) },
                rtol: 1e-4, atol: 1e-6)
        }
        XCTAssertFalse(try loss(.hard).softTermIsWeighted)
        XCTAssertFalse(try loss(.mse).softTermIsWeighted)
    }
}
