import DistillCore

/// Stochastic gradient descent with momentum (heavy-ball or Nesterov) and L2 weight decay,
/// exactly as PyTorch's `torch.optim.SGD` (dampening 0):
///
///     g = grad + weightDecay * w
///     v = momentum * v + g                   (v = g on the first step)
///     d = nesterov ? g + momentum * v : v
///     w = w - learningRate * d
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public var maxNorm: Float?
    private var velocity = OptimizerSlots()

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false,
                weightDecay: Float = 0, maxNorm: Float? = nil) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.maxNorm = maxNorm
    }

    /// The momentum buffers, one per parameter (empty before the first step).
    public var velocities: [Tensor] { velocity.tensors }

    public var state: OptimizerState { OptimizerState(slots: ["velocity": velocity.tensors], stepCount: 0) }

    public func restore(_ state: OptimizerState, for parameters: [Parameter]) throws {
        try velocity.restore(state.slots["velocity"], for: parameters, name: "velocity")
    }

    public func step(_ parameters: [Parameter]) {
        velocity.prepare(for: parameters)
        let lr = Float8(repeating: learningRate), mu = Float8(repeating: momentum)
        let wd = Float8(repeating: weightDecay)
        let lrS = learningRate, muS = momentum, wdS = weightDecay, nesterov = self.nesterov
        let useMomentum = momentum != 0
        for (index, p) in parameters.enumerated() {
            let w = SendablePointer(p.value.pointer), g = SendablePointer(p.gradient.pointer)
            let v = SendablePointer(velocity[index].pointer)
            elementwise(p.value.count, vector: { i in
                let wv = load8(w.pointer + i)
                let gv = load8(g.pointer + i) + wd * wv
                var d = gv
                if useMomentum {
                    let vv = mu * load8(v.pointer + i) + gv
                    store8(vv, v.pointer + i)
                    d = nesterov ? gv + mu * vv : vv
                }
                store8(wv - lr * d, w.pointer + i)
            }, scalar: { i in
                let gv = g[i] + wdS * w[i]
                var d = gv
                if useMomentum {
                    let vv = muS * v[i] + gv
                    v[i] = vv
                    d = nesterov ? gv + muS * vv : vv
                }
                w[i] -= lrS * d
            })
        }
        if let maxNorm { applyMaxNorm(maxNorm, to: parameters) }
    }
}
