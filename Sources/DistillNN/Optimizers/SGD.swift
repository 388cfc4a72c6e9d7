import DistillCore

/// Stochastic gradient descent with momentum (heavy-ball or Nesterov) and L2 weight decay,
/// exactly as PyTorch's `torch.optim.SGD` (dampening 0):
///
///     g = grad + weightDecay * w
///     v = momentum * v + g                   (v = g on the first step)
///     d = nesterov ? g + momentum * v : v
///     w = w - learningRate * d
///
/// With momentum and neither weight decay nor Nesterov (the default recipe), `prepareForBackward`
/// has the backward pass compute `v = momentum * v + grad` itself (the gradient GEMM's `beta`),
/// and `step` is then only `w = w - learningRate * v`: three streams over memory instead of five,
/// through BLAS `saxpy` (one fused multiply-add per element, as PyTorch's `w.add_(v, alpha=-lr)`;
/// `step` without `prepareForBackward` does the same after its own `v = momentum * v + grad`, and
/// plain SGD without weight decay updates through `saxpy` too). The numbers are the same to
/// rounding with and without `prepareForBackward`, and bit for bit where the GEMM kernel adds one
/// block's sum to `momentum * v` (OpenBLAS's Haswell kernel for batches of a few hundred rows);
/// otherwise `momentum * v` meets the partial sums in the kernel's order.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public var maxNorm: Float?
    private var velocity = OptimizerSlots()

    public init(
        learningRate: Float, momentum: Float = 0, nesterov: Bool = false,
        weightDecay: Float = 0, maxNorm: Float? = nil
    ) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.maxNorm = maxNorm
    }

    /// The momentum buffers, one per parameter (empty before the first step).
    public var velocities: [Tensor] { velocity.tensors }

    public var state: OptimizerState {
        OptimizerState(slots: ["velocity": velocity.tensors], stepCount: 0)
    }

    public func restore(_ state: OptimizerState, for parameters: [Parameter]) throws {
        try velocity.restore(state.slots["velocity"], for: parameters, name: "velocity")
    }

    /// Whether the gradient can go straight into the velocity: with weight decay or Nesterov the
    /// update needs the gradient on its own.
    private var accumulatesIntoVelocity: Bool { momentum != 0 && weightDecay == 0 && !nesterov }

    public func prepareForBackward(_ parameters: [Parameter]) {
        guard accumulatesIntoVelocity else { return }
        velocity.prepare(for: parameters)
        for (index, p) in parameters.enumerated() {
            p.accumulate(into: velocity[index], scaling: momentum)
        }
    }

    /// One update of every parameter; a parameter without a gradient (`gradient` nil) is skipped.
    public func step(_ parameters: [Parameter]) {
        velocity.prepare(for: parameters)
        for (index, p) in parameters.enumerated() {
            let w = p.value.pointer
            let count = p.value.count
            if accumulatesIntoVelocity {
                // v = momentum * v + grad: left by the backward pass when prepareForBackward
                // redirected the gradient (a parameter it never reached has a zero gradient: v =
                // momentum * v), computed here otherwise. Then w -= lr v, the same way both times.
                let v = velocity[index].pointer
                if p.isAccumulating(into: velocity[index]) {
                    if p.hasZeroGradient { elementwise(count, Scale(x: v, factor: momentum)) }
                    p.finishAccumulation()
                } else if let g = p.gradient {
                    elementwise(count, Accumulate(v: v, g: g.pointer, momentum: momentum))
                } else {
                    continue  // no gradient since the sum was used: skipped
                }
                axpy(count: count, alpha: -learningRate, x: v, y: w)
                continue
            }
            guard let g = p.gradient?.pointer else { continue }
            if momentum == 0 && weightDecay == 0 {
                axpy(count: count, alpha: -learningRate, x: g, y: w)
            } else if momentum == 0 {
                elementwise(
                    count,
                    PlainUpdate(w: w, g: g, learningRate: learningRate, weightDecay: weightDecay))
            } else {
                elementwise(
                    count,
                    MomentumUpdate(
                        w: w, g: g, v: velocity[index].pointer, learningRate: learningRate,
                        momentum: momentum, weightDecay: weightDecay, nesterov: nesterov))
            }
        }
        if let maxNorm { applyMaxNorm(maxNorm, to: parameters) }
    }
}

/// `x *= factor`.
private struct Scale: ElementwiseKernel {
    let x: UnsafeMutablePointer<Float>, factor: Float

    @inline(__always) func eight(at i: Int) { store8(factor * load8(x + i), x + i) }

    @inline(__always) func one(at i: Int) { x[i] *= factor }
}

/// `v = momentum * v + g`.
private struct Accumulate: ElementwiseKernel {
    let v: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, momentum: Float

    @inline(__always) func eight(at i: Int) {
        store8(momentum * load8(v + i) + load8(g + i), v + i)
    }

    @inline(__always) func one(at i: Int) { v[i] = momentum * v[i] + g[i] }
}

/// `w -= lr * (g + wd * w)`.
private struct PlainUpdate: ElementwiseKernel {
    let w: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>
    let learningRate: Float, weightDecay: Float

    @inline(__always) func eight(at i: Int) {
        let wv = load8(w + i)
        store8(wv - learningRate * (load8(g + i) + weightDecay * wv), w + i)
    }

    @inline(__always) func one(at i: Int) { w[i] -= learningRate * (g[i] + weightDecay * w[i]) }
}

/// `v = mu * v + g'`, `w -= lr * (nesterov ? g' + mu * v : v)` with `g' = g + wd * w`.
private struct MomentumUpdate: ElementwiseKernel {
    let w: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>,
        v: UnsafeMutablePointer<Float>
    let learningRate: Float, momentum: Float, weightDecay: Float, nesterov: Bool

    @inline(__always) func eight(at i: Int) {
        let wv = load8(w + i)
        let gv = load8(g + i) + weightDecay * wv
        let vv = momentum * load8(v + i) + gv
        store8(vv, v + i)
        store8(wv - learningRate * (nesterov ? gv + momentum * vv : vv), w + i)
    }

    @inline(__always) func one(at i: Int) {
        let gv = g[i] + weightDecay * w[i]
        let vv = momentum * v[i] + gv
        v[i] = vv
        w[i] -= learningRate * (nesterov ? gv + momentum * vv : vv)
    }
}
