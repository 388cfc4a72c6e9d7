import DistillCore

/// A trainable tensor and its gradient.
///
/// Gradients accumulate: each backward pass adds to `gradient`. `zeroGradient()` marks the
/// gradient as zero without writing it; the next layer to accumulate overwrites instead of adding
/// (BLAS `beta = 0`), which saves a pass over memory on every step.
///
/// An optimizer whose state is a running sum of gradients (SGD's momentum buffer) may have the
/// backward pass accumulate straight into that state instead (`accumulate(into:scaling:)`), which
/// saves the gradient buffer's write and read. The gradient is then not kept on its own: `gradient`
/// is nil until the next `zeroGradient()`, and optimizers skip the parameter, as PyTorch's skip a
/// parameter whose `grad` is `None`.
public final class Parameter {
    /// "weight" or "bias".
    public let name: String
    /// The values, in PyTorch's layout (`[out, in]` for a dense weight, `[out, in, kh, kw]` for a
    /// convolution's).
    public var value: Tensor
    /// Weights (not biases) take the max-norm constraint.
    public let isWeight: Bool
    /// Allocated by the first backward pass (or read of `gradient`) that needs it, so that a model
    /// that never trains (a frozen teacher, `eval`, `logits`) holds no gradient buffers.
    private var gradientBuffer: Tensor?
    private var gradientIsZero = true
    /// Where backward passes accumulate instead of `storedGradient`, and the factor the first
    /// accumulation scales it by (see `accumulate(into:scaling:)`).
    private var redirection: (target: Tensor, scale: Float)?
    /// Whether an optimizer step has used the redirected sum (`finishAccumulation()`).
    private var redirectionUsed = false

    public init(name: String, value: Tensor, isWeight: Bool) {
        self.name = name
        self.value = value
        self.isWeight = isWeight
    }

    /// The accumulated gradient (materialised as zeros if nothing has accumulated since the last
    /// `zeroGradient()`), or nil while the gradient goes into an optimizer's state instead (since
    /// `accumulate(into:scaling:)`, as `TrainingStep` arranges for SGD with plain momentum): to read
    /// it, call `zeroGradient()` and run the backward pass without the optimizer's
    /// `prepareForBackward`.
    public var gradient: Tensor? {
        guard redirection == nil else { return nil }
        if gradientIsZero {
            storedGradient.fill(0)
            gradientIsZero = false
        }
        return storedGradient
    }

    /// Whether a gradient buffer has been allocated (by a backward pass or a read of `gradient`).
    package var holdsGradientBuffer: Bool { gradientBuffer != nil }

    private var storedGradient: Tensor {
        if let gradientBuffer { return gradientBuffer }
        let buffer = Tensor(zeros: value.shape)
        gradientBuffer = buffer
        return buffer
    }

    /// Whether nothing has accumulated since the last `zeroGradient()` or
    /// `accumulate(into:scaling:)`.
    public var hasZeroGradient: Bool { gradientIsZero }

    /// Resets the gradient to zero (lazily), and ends any redirection.
    public func zeroGradient() {
        gradientIsZero = true
        redirection = nil
        redirectionUsed = false
    }

    /// Until the next `zeroGradient()`, backward passes accumulate into `buffer` (same shape)
    /// instead of the gradient: the first computes `buffer = scale * buffer + gradient`, later ones
    /// add. SGD uses it to take the gradient straight into its momentum buffer.
    package func accumulate(into buffer: Tensor, scaling scale: Float) {
        precondition(
            buffer.shape == value.shape,
            "Parameter \(name): accumulation buffer \(buffer.shape), value \(value.shape)")
        gradientIsZero = true
        redirection = (buffer, scale)
        redirectionUsed = false
    }

    /// Marks the redirected sum as used by an optimizer step: `isAccumulating(into:)` is false
    /// again, so a second step without a new backward pass does not take it for a fresh one (and,
    /// `gradient` being nil, skips the parameter).
    package func finishAccumulation() { redirectionUsed = true }

    /// Whether backward passes go to `buffer` and no step has used the sum yet (since
    /// `accumulate(into:scaling:)` with it, and no `zeroGradient()` or `finishAccumulation()`).
    package func isAccumulating(into buffer: Tensor) -> Bool {
        !redirectionUsed && (redirection.map { $0.target.storage === buffer.storage } ?? false)
    }

    /// For layers: the buffer to accumulate into and the BLAS `beta` to use: for the gradient, 0
    /// when it is logically zero (the buffer is overwritten) and 1 otherwise; for a redirection,
    /// its scale at the first accumulation and 1 after.
    package func accumulationTarget() -> (gradient: Tensor, beta: Float) {
        let first = gradientIsZero
        gradientIsZero = false
        if let redirection { return (redirection.target, first ? redirection.scale : 1) }
        return (storedGradient, first ? 0 : 1)
    }

    /// For layers that add to their gradient element by element instead of through a BLAS
    /// `beta`: the buffer, already scaled by the `beta` of `accumulationTarget()` (zeroed for a
    /// gradient that is logically zero), to add this pass's gradient to.
    package func startAccumulating() -> Tensor {
        let (target, beta) = accumulationTarget()
        if beta == 0 {
            target.fill(0)
        } else if beta != 1 {
            for i in 0..<target.count { target[i] *= beta }
        }
        return target
    }

    /// Adds `gradient` (this parameter's shape) to the accumulated gradient, as a backward pass
    /// would (through `accumulationTarget()`): what sums the gradients of a batch's parts.
    package func addToGradient(_ gradient: Tensor) {
        precondition(
            gradient.shape == value.shape,
            "Parameter \(name): gradient \(gradient.shape), value \(value.shape)")
        let (target, beta) = accumulationTarget()
        if beta == 0 {
            target.pointer.update(from: gradient.pointer, count: target.count)
            return
        }
        if beta != 1 { for i in 0..<target.count { target[i] *= beta } }
        axpy(count: target.count, alpha: 1, x: gradient.pointer, y: target.pointer)
    }

    /// The number of elements of one output unit's incoming weights (a row of the `[out, ...]`
    /// layout): the vector the max-norm constraint bounds.
    public var rowLength: Int { value.shape.count > 1 ? value.count / value.shape[0] : value.count }
}

/// Why `parameters` weights (4 bytes each) cannot be allocated on this machine, or nil when they
/// fit in `available` bytes: checked before a loader builds layers from a file's description.
func weightsExceedMemory(_ parameters: Double, available: Double = physicalMemoryBytes()) -> String?
{
    let bytes = 4 * parameters
    guard available > 0, bytes > available else { return nil }
    return
        "need \(formatBytes(bytes)) for \(parameters < 1e15 ? "\(Int(parameters))" : "\(parameters)") weights, more than this machine's \(formatBytes(available)) of memory"
}
