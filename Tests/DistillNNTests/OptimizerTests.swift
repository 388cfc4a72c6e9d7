import DistillCore
import DistillTestSupport
import XCTest

@testable import DistillNN

/// One parameter `w = [1, -2, 3]` with gradient `g = [0.5, 0.25, -1]`; the expected values are
/// worked by hand from the update rules (PyTorch's, quoted in each optimizer's doc comment).
final class OptimizerTests: XCTestCase {
    func parameter(_ w: [Float] = [1, -2, 3], gradient g: [Float] = [0.5, 0.25, -1]) -> Parameter {
        let p = Parameter(
            name: "weight", value: Tensor(shape: [1, w.count], values: w), isWeight: true)
        let grad = p.gradient!
        for i in 0..<g.count { grad[i] = g[i] }
        return p
    }

    func testSGDSingleSteps() {
        // Plain: w - lr g.
        var p = parameter()
        SGD(learningRate: 0.1).step([p])
        assertClose(p.value.values, [0.95, -2.025, 3.1], rtol: 0, atol: 1e-6)
        // Weight decay 0.5: g' = g + 0.5 w = [1, -0.75, 0.5]; w - 0.1 g'.
        p = parameter()
        SGD(learningRate: 0.1, weightDecay: 0.5).step([p])
        assertClose(p.value.values, [0.9, -1.925, 2.95], rtol: 0, atol: 1e-6)
        // Momentum 0.9, two steps with the same gradient: v1 = g, v2 = 0.9 g + g = 1.9 g.
        p = parameter()
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        sgd.step([p])
        sgd.step([p])
        assertClose(
            p.value.values, [1 - 0.1 * 0.5 * 2.9, -2 - 0.1 * 0.25 * 2.9, 3 + 0.1 * 2.9], rtol: 0,
            atol: 1e-6)
        // Nesterov, one step: v = g, d = g + 0.9 v = 1.9 g.
        p = parameter()
        SGD(learningRate: 0.1, momentum: 0.9, nesterov: true).step([p])
        assertClose(p.value.values, [1 - 0.095, -2 - 0.0475, 3 + 0.19], rtol: 0, atol: 1e-6)
    }

    /// Momentum prepared for the backward pass (`prepareForBackward`): a layer accumulating takes
    /// `v = 0.9 v + g` through its BLAS beta; a parameter nothing reached still decays, `v = 0.9 v`,
    /// as with a zero gradient; then `w -= lr v`.
    func testMomentumPreparedForBackward() {
        let p = parameter()
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        sgd.step([p])  // v = g = [0.5, 0.25, -1], w = [0.95, -2.025, 3.1]
        p.zeroGradient()
        sgd.prepareForBackward([p])
        let (target, beta) = p.accumulationTarget()
        XCTAssertEqual(beta, 0.9)
        XCTAssertEqual(p.accumulationTarget().beta, 1)
        XCTAssertTrue(target.storage === sgd.velocities[0].storage)
        // what a layer's GEMM does with gradient 1
        for i in 0..<3 { target[i] = 0.9 * target[i] + 1 }
        sgd.step([p])
        assertClose(sgd.velocities[0].values, [1.45, 1.225, 0.1], rtol: 0, atol: 1e-6)
        assertClose(
            p.value.values, [0.95 - 0.145, -2.025 - 0.1225, 3.1 - 0.01], rtol: 0, atol: 1e-6)
        // Nothing accumulates this time: v = 0.9 v.
        p.zeroGradient()
        sgd.prepareForBackward([p])
        sgd.step([p])
        assertClose(sgd.velocities[0].values, [1.305, 1.1025, 0.09], rtol: 0, atol: 1e-6)
        assertClose(
            p.value.values, [0.805 - 0.1305, -2.1475 - 0.11025, 3.09 - 0.009], rtol: 0, atol: 1e-6)
        XCTAssertFalse(p.isAccumulating(into: sgd.velocities[0]))  // used by that step
        // Zeroing after preparing ends the redirection: the gradient path, v = 0.9 v + g.
        sgd.prepareForBackward([p])
        p.zeroGradient()
        let g = p.gradient!
        for i in 0..<3 { g[i] = 1 }
        sgd.step([p])
        assertClose(sgd.velocities[0].values, [2.1745, 1.99225, 1.081], rtol: 0, atol: 1e-6)
    }

    /// After a step whose gradient went into the momentum buffer, the gradient is not kept: it
    /// reads as nil (it used to trap), and another step without a backward pass skips the
    /// parameter (as PyTorch skips `grad is None`) instead of reusing the sum; zeroing makes it
    /// readable again.
    func testGradientTakenIntoTheOptimizerReadsAsNil() {
        let p = parameter()
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        p.zeroGradient()
        sgd.prepareForBackward([p])
        let (target, _) = p.accumulationTarget()
        for i in 0..<3 { target[i] = 1 }  // v = 0.9 * 0 + 1
        XCTAssertNil(p.gradient)
        sgd.step([p])
        XCTAssertNil(p.gradient)
        let (weights, velocity) = (p.value.values, sgd.velocities[0].values)
        assertClose(weights, [0.9, -2.1, 2.9], rtol: 0, atol: 1e-6)
        sgd.step([p])  // no new gradient: nothing changes
        XCTAssertEqual(p.value.values, weights)
        XCTAssertEqual(sgd.velocities[0].values, velocity)
        let adam = Adam(learningRate: 0.1)
        sgd.prepareForBackward([p])
        adam.step([p])  // Adam skips it too
        XCTAssertEqual(p.value.values, weights)
        p.zeroGradient()
        XCTAssertEqual(p.gradient?.values, [0, 0, 0])
    }

    func testAdamSingleStepAndBiasCorrection() {
        // Step 1: m = 0.1 g, v = 0.001 g^2; bias-corrected m/(1-0.9) = g, v/(1-0.999) = g^2, so
        // w - lr * g / (|g| + eps) = w - lr * sign(g) (up to eps).
        let p = parameter()
        let adam = Adam(learningRate: 0.01)
        adam.step([p])
        assertClose(p.value.values, [0.99, -2.01, 3.01], rtol: 0, atol: 1e-6)
        // Step 2 with gradient 2g: m = 0.09 g + 0.2 g = 0.29 g, mhat = 0.29 g / 0.19;
        // v = 0.000999 g^2 + 0.004 g^2 = 0.004999 g^2, vhat = v / (1 - 0.999^2).
        let grad = p.gradient!
        for i in 0..<3 { grad[i] *= 2 }
        adam.step([p])
        let g: [Double] = [0.5, 0.25, -1]
        let expected = zip([0.99, -2.01, 3.01], g).map { w, g -> Double in
            let mhat = 0.29 * g / 0.19
            let vhat = 0.004999 * g * g / (1 - 0.999 * 0.999)
            return w - 0.01 * mhat / (vhat.squareRoot() + 1e-8)
        }
        assertClose(p.value.values, expected, rtol: 0, atol: 2e-6)
        XCTAssertEqual(adam.stepCount, 2)
    }

    func testAdamL2VersusAdamWDecoupledDecay() {
        // Adam's L2: g' = g + 0.1 w, then the step is lr * sign(g') on the first step.
        let p = parameter([1, -2, 3], gradient: [0.5, 0.25, -1])
        Adam(learningRate: 0.01, weightDecay: 0.1).step([p])
        // g' = [0.6, 0.05, -0.7]: signs +, +, -.
        assertClose(p.value.values, [0.99, -2.01, 3.01], rtol: 0, atol: 1e-6)
        // AdamW: w (1 - lr wd) first, then lr * sign(g).
        let q = parameter()
        Adam.adamW(learningRate: 0.01, weightDecay: 0.1).step([q])
        assertClose(
            q.value.values, [1 * 0.999 - 0.01, -2 * 0.999 - 0.01, 3 * 0.999 + 0.01], rtol: 0,
            atol: 1e-6)
    }

    func testMaxNormClipsRowsOnly() {
        let p = Parameter(
            name: "weight", value: Tensor(shape: [2, 2], values: [3, 4, 0.3, 0.4]), isWeight: true)
        let b = Parameter(
            name: "bias", value: Tensor(shape: [2], values: [30, 40]), isWeight: false)
        applyMaxNorm(2, to: [p, b])
        // row 1 (norm 5) scaled to 2
        assertClose(p.value.values, [1.2, 1.6, 0.3, 0.4], rtol: 0, atol: 1e-6)
        XCTAssertEqual(b.value.values, [30, 40])
    }

    /// Each optimizer minimises a badly scaled quadratic `sum_i c_i (w_i - t_i)^2`.
    func testConvergenceOnAQuadratic() {
        let target: [Float] = [1, -3, 0.5, 2, -1, 4, 0, 0.25, -2]
        let curvature: [Float] = [1, 10, 0.5, 2, 5, 1, 3, 0.2, 8]
        let optimizers: [(String, any Optimizer, Int)] = [
            ("sgd", SGD(learningRate: 0.04), 800),
            ("momentum", SGD(learningRate: 0.01, momentum: 0.9), 800),
            ("nesterov", SGD(learningRate: 0.01, momentum: 0.9, nesterov: true), 800),
            ("adam", Adam(learningRate: 0.05), 1500),
            ("adamw", Adam.adamW(learningRate: 0.05, weightDecay: 0), 1500),
        ]
        for (name, optimizer, steps) in optimizers {
            let p = Parameter(name: "weight", value: Tensor(zeros: [target.count]), isWeight: true)
            for _ in 0..<steps {
                p.zeroGradient()
                let g = p.gradient!
                for i in 0..<target.count { g[i] = 2 * curvature[i] * (p.value[i] - target[i]) }
                optimizer.step([p])
            }
            assertClose(p.value.values, target, rtol: 0, atol: 1e-2, name)
        }
    }

    /// Vector and scalar tails of the update loops agree: a parameter of 1,000,003 elements
    /// (threaded, with a tail) updated by SGD equals the closed form everywhere.
    func testLargeParameterUsesTheSameRule() {
        let n = 1_000_003
        let p = Parameter(name: "weight", value: Tensor(zeros: [n]), isWeight: true)
        let g = p.gradient!
        for i in 0..<n {
            p.value[i] = Float(i % 97)
            g[i] = Float(i % 13) - 6
        }
        SGD(learningRate: 0.5, momentum: 0.9, weightDecay: 0.01).step([p])
        for i in stride(from: 0, to: n, by: 9973) + [n - 1, n - 2, n - 3] {
            let w = Float(i % 97)
            let gr = Float(i % 13) - 6 + 0.01 * w
            XCTAssertEqual(p.value[i], w - 0.5 * gr, accuracy: 1e-4, "element \(i)")
        }
    }

    /// The eight-lane loops (split across cores) compute what the one-element tail computes, bit
    /// for bit: every optimizer, two steps on a parameter of 1,000,003 elements against the same two
    /// steps on three-element parameters (tail only, one thread) holding sampled elements.
    func testEightLanePathsMatchTheTail() {
        let configurations: [(String, () -> any Optimizer)] = [
            ("sgd", { SGD(learningRate: 0.5, weightDecay: 0.01) }),
            ("sgd through saxpy", { SGD(learningRate: 0.5) }),
            ("momentum", { SGD(learningRate: 0.5, momentum: 0.9, weightDecay: 0.01) }),
            ("momentum through saxpy", { SGD(learningRate: 0.5, momentum: 0.9) }),
            ("nesterov", { SGD(learningRate: 0.5, momentum: 0.9, nesterov: true) }),
            ("adam", { Adam(learningRate: 0.01, weightDecay: 0.01) }),
            ("adamw", { Adam.adamW(learningRate: 0.01, weightDecay: 0.01) }),
        ]
        let n = 1_000_003
        let w0 = (0..<n).map { Float($0 % 97) * 0.03 - 1 }
        let g0 = (0..<n).map { Float($0 % 13) * 0.1 - 0.6 }
        let sampled = [
            [0, 1, 2], [7, 8, 9], [15, 16, 17], [123_456, 500_001, 500_002], [n - 3, n - 2, n - 1],
        ]
        for (name, make) in configurations {
            let big = Parameter(
                name: "weight", value: Tensor(shape: [n], values: w0), isWeight: true)
            let small = sampled.map { indices in
                Parameter(
                    name: "weight", value: Tensor(shape: [3], values: indices.map { w0[$0] }),
                    isWeight: true)
            }
            let bigOptimizer = make()
            let smallOptimizer = make()
            for step in 1...2 {
                let scale = Float(step)
                let g = big.gradient!
                for i in 0..<n { g[i] = g0[i] * scale }
                for (p, indices) in zip(small, sampled) {
                    for (k, i) in indices.enumerated() { p.gradient![k] = g0[i] * scale }
                }
                bigOptimizer.step([big])
                smallOptimizer.step(small)
            }
            for (p, indices) in zip(small, sampled) {
                XCTAssertEqual(
                    indices.map { big.value[$0] }, p.value.values, "\(name), elements \(indices)")
            }
        }
    }
}

final class LearningRateScheduleTests: XCTestCase {
    func testConstantAndWarmup() {
        let s = LearningRateSchedule(base: 0.1, decay: .constant, warmupSteps: 4)
        assertClose(
            [0, 1, 3, 4, 100].map { s.rate(at: $0) }, [0.025, 0.05, 0.1, 0.1, 0.1], rtol: 1e-6,
            atol: 0)
    }

    func testStepDecayBoundaries() {
        let s = LearningRateSchedule(base: 1, decay: .step(every: 10, factor: 0.5))
        assertClose(
            [0, 9, 10, 19, 20, 35].map { s.rate(at: $0) }, [1, 1, 0.5, 0.5, 0.25, 0.125],
            rtol: 1e-6, atol: 0)
    }

    func testCosineBoundaries() {
        let s = LearningRateSchedule(base: 0.05, decay: .cosine(totalSteps: 100, minimum: 0))
        assertClose(s.rate(at: 0), 0.05, rtol: 1e-6)
        assertClose(s.rate(at: 50), 0.025, rtol: 1e-5)
        assertClose(s.rate(at: 100), 0, atol: 1e-9)
        assertClose(s.rate(at: 150), 0, atol: 1e-9)
        // With warm-up, the cosine starts where the warm-up ends and still ends at totalSteps.
        let w = LearningRateSchedule(
            base: 1, decay: .cosine(totalSteps: 110, minimum: 0.1), warmupSteps: 10)
        assertClose(w.rate(at: 9), 1, rtol: 1e-6)
        assertClose(w.rate(at: 10), 1, rtol: 1e-6)
        assertClose(w.rate(at: 60), 0.55, rtol: 1e-5)
        assertClose(w.rate(at: 110), 0.1, rtol: 1e-5)
    }
}
