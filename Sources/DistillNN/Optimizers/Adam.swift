import DistillCore

/// Adam with bias correction, exactly as PyTorch's `torch.optim.Adam` (weight decay as an L2 term
/// added to the gradient) and, with `decoupledWeightDecay`, as `torch.optim.AdamW`:
///
///     g = grad + weightDecay * w             (Adam)      w = w * (1 - lr * weightDecay)   (AdamW)
///     m = beta1 * m + (1 - beta1) * g
///     v = beta2 * v + (1 - beta2) * g^2
///     w = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + epsilon)
///
/// D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015;
/// I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    /// AdamW's decoupled decay instead of Adam's L2 term.
    public let decoupledWeightDecay: Bool
    public var maxNorm: Float?
    /// Steps taken so far (t in the bias corrections).
    public private(set) var stepCount = 0
    private var firstMoment = OptimizerSlots()
    private var secondMoment = OptimizerSlots()

    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 0, decoupledWeightDecay: Bool = false, maxNorm: Float? = nil
    ) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        self.maxNorm = maxNorm
    }

    public var state: OptimizerState {
        OptimizerState(
            slots: ["m": firstMoment.tensors, "v": secondMoment.tensors], stepCount: stepCount)
    }

    public func restore(_ state: OptimizerState, for parameters: [Parameter]) throws {
        try firstMoment.restore(state.slots["m"], for: parameters, name: "m")
        try secondMoment.restore(state.slots["v"], for: parameters, name: "v")
        stepCount = state.stepCount
    }

    public func step(_ parameters: [Parameter]) {
        firstMoment.prepare(for: parameters)
        secondMoment.prepare(for: parameters)
        stepCount += 1
        let t = Double(stepCount)
        let bc1 = 1 - pow(Double(beta1), t)
        let bc2 = 1 - pow(Double(beta2), t)
        let stepSize = Float(Double(learningRate) / bc1)
        let invSqrtBC2 = Float(1 / bc2.squareRoot())
        let decay = decoupledWeightDecay ? 1 - learningRate * weightDecay : 1
        let l2 = decoupledWeightDecay ? 0 : weightDecay
        for (index, p) in parameters.enumerated() {
            // no gradient: skipped, as PyTorch skips grad None
            guard let g = p.gradient else { continue }
            elementwise(
                p.value.count,
                AdamUpdate(
                    w: p.value.pointer, g: g.pointer, m: firstMoment[index].pointer,
                    v: secondMoment[index].pointer, beta1: beta1, beta2: beta2, epsilon: epsilon,
                    decay: decay,
                    l2: l2, stepSize: stepSize, inverseSqrtCorrection2: invSqrtBC2))
        }
        if let maxNorm { applyMaxNorm(maxNorm, to: parameters) }
    }
}

/// One Adam step for eight elements or one (see `Adam`): `decay` is AdamW's `1 - lr * wd` (1 for
/// Adam), `l2` Adam's weight decay (0 for AdamW).
private struct AdamUpdate: ElementwiseKernel {
    let w: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let beta1: Float, beta2: Float, epsilon: Float, decay: Float, l2: Float
    let stepSize: Float, inverseSqrtCorrection2: Float

    @inline(__always) func eight(at i: Int) {
        let wv = load8(w + i) * decay
        let gv = load8(g + i) + l2 * wv
        let mv = beta1 * load8(m + i) + (1 - beta1) * gv
        let vv = beta2 * load8(v + i) + (1 - beta2) * gv * gv
        store8(mv, m + i)
        store8(vv, v + i)
        store8(wv - stepSize * mv / (vv.squareRoot() * inverseSqrtCorrection2 + epsilon), w + i)
    }

    @inline(__always) func one(at i: Int) {
        let wv = w[i] * decay
        let gv = g[i] + l2 * wv
        let mv = beta1 * m[i] + (1 - beta1) * gv
        let vv = beta2 * v[i] + (1 - beta2) * gv * gv
        m[i] = mv
        v[i] = vv
        w[i] = wv - stepSize * mv / (vv.squareRoot() * inverseSqrtCorrection2 + epsilon)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
