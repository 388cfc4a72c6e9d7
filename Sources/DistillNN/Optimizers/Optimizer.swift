import DistillCore

/// Updates parameters from their accumulated gradients.
///
/// An optimizer keeps per-parameter state (momentum, moments) in the order of the parameter list
/// it is given, which must be the same list on every step.
public protocol Optimizer: AnyObject {
    /// The step size of the next update; a schedule sets it before each step.
    var learningRate: Float { get set }
    /// The optional max-norm constraint applied to weights after each update.
    var maxNorm: Float? { get set }
    /// One update of every parameter from its gradient; a parameter whose `gradient` is nil is
    /// skipped. Gradients are left as they are (a gradient that went into the optimizer's state
    /// through `prepareForBackward` is marked as used).
    func step(_ parameters: [Parameter])
    /// Called after `zeroGradient()` and before the backward pass whose gradients the next `step`
    /// uses, with the same parameters: the optimizer may have the gradients accumulate straight
    /// into its own state (SGD's momentum), which spares a buffer's write and read per step. The
    /// parameters' `gradient` is then nil until their next `zeroGradient()`.
    /// `TrainingStep` calls it; the default does nothing.
    func prepareForBackward(_ parameters: [Parameter])
    /// Everything the optimizer carries from step to step (momentum buffers, moments, the step
    /// count), for training checkpoints.
    var state: OptimizerState { get }
    /// Continues from a saved `state`; the parameter list must be the one it was saved with.
    /// - Throws: `ArchitectureError` when the state does not fit `parameters`.
    func restore(_ state: OptimizerState, for parameters: [Parameter]) throws
}

extension Optimizer {
    public func prepareForBackward(_ parameters: [Parameter]) {}
}

/// An optimizer's state: named lists of per-parameter tensors and a step count.
public struct OptimizerState {
    public var slots: [String: [Tensor]]
    public var stepCount: Int

    public init(slots: [String: [Tensor]], stepCount: Int) {
        self.slots = slots
        self.stepCount = stepCount
    }
}

/// Clips each output unit's incoming weight vector (a row of `[out, ...]`) to an L2 norm of at
/// most `limit`; biases are left alone. Used by Hinton's dropout teacher ("max-norm
/// regularisation"; Srivastava et al., JMLR 2014, section 5.1).
public func applyMaxNorm(_ limit: Float, to parameters: [Parameter]) {
    for p in parameters where p.isWeight {
        let rows = p.value.shape[0]
        let length = p.rowLength
        let w = SendablePointer(p.value.pointer)
        parallelFor(rows, costPerItem: length) { range in
            for r in range {
                let row = w.pointer + r * length
                var acc = Float8.zero
                var j = 0
                while j + 8 <= length {
                    let v = load8(row + j)
                    acc += v * v
                    j += 8
                }
                var norm2 = Double(horizontalSum(acc))
                while j < length {
                    norm2 += Double(row[j] * row[j])
                    j += 1
                }
                let norm = norm2.squareRoot()
                if norm > Double(limit) {
                    let scale = Float(Double(limit) / norm)
                    for k in 0..<length { row[k] *= scale }
                }
            }
        }
    }
}

/// Per-parameter state tensors, created on the first step with the parameters' shapes.
struct OptimizerSlots {
    private(set) var tensors: [Tensor] = []

    mutating func prepare(for parameters: [Parameter]) {
        if tensors.count == parameters.count { return }
        tensors = parameters.map { Tensor(zeros: $0.value.shape) }
    }

    subscript(i: Int) -> Tensor { tensors[i] }

    /// Copies of `saved` (empty: not started), checked against the parameters' shapes.
    mutating func restore(_ saved: [Tensor]?, for parameters: [Parameter], name: String) throws {
        guard let saved, !saved.isEmpty else {
            tensors = []
            return
        }
        guard saved.count == parameters.count,
            zip(saved, parameters).allSatisfy({ $0.shape == $1.value.shape })
        else {
            throw ArchitectureError(
                "the saved optimizer state '\(name)' does not fit the model's parameters")
        }
        tensors = saved.map { $0.copy() }
    }
}
