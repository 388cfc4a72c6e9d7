import DistillCore

/// A trainable tensor and its gradient.
///
/// Gradients accumulate: each backward pass adds to `gradient`. `zeroGradient()` marks the
/// gradient as zero without writing it; the next layer to accumulate overwrites instead of adding
/// (BLAS `beta = 0`), which saves a pass over memory on every step.
public final class Parameter {
    /// "weight" or "bias".
    public let name: String
    /// The values, in PyTorch's layout (`[out, in]` for a dense weight, `[out, in, kh, kw]` for a
    /// convolution's).
    public var value: Tensor
    /// Weights (not biases) take the max-norm constraint.
    public let isWeight: Bool
    private var storedGradient: Tensor
    private var gradientIsZero = true

    public init(name: String, value: Tensor, isWeight: Bool) {
        self.name = name
        self.value = value
        self.isWeight = isWeight
        self.storedGradient = Tensor(zeros: value.shape)
    }

    /// The accumulated gradient (materialised as zeros if nothing has accumulated since the last
    /// `zeroGradient()`).
    public var gradient: Tensor {
        if gradientIsZero { storedGradient.fill(0); gradientIsZero = false }
        return storedGradient
    }

    /// Whether nothing has accumulated since the last `zeroGradient()`.
    public var hasZeroGradient: Bool { gradientIsZero }

    /// Resets the gradient to zero (lazily).
    public func zeroGradient() { gradientIsZero = true }

    /// For layers: the gradient buffer to accumulate into, and the BLAS `beta` to use (0 when the
    /// gradient is logically zero, so the buffer is overwritten; 1 otherwise).
    package func accumulationTarget() -> (gradient: Tensor, beta: Float) {
        if gradientIsZero { gradientIsZero = false; return (storedGradient, 0) }
        return (storedGradient, 1)
    }

    /// The number of elements of one output unit's incoming weights (a row of the `[out, ...]`
    /// layout): the vector the max-norm constraint bounds.
    public var rowLength: Int { value.shape.count > 1 ? value.count / value.shape[0] : value.count }
}
