import DistillCore
import DistillNN

/// The memory a training run of an architecture needs, counted before anything is allocated, so
/// that a network too large for the machine is refused with its sizes instead of aborting in the
/// allocator.
///
/// Bytes = 4 x (parameters x (weights, gradients, the best weights kept for early stopping, and the
/// optimiser's state: SGD's momentum, Adam's two moments) + batch x (the inputs and the per-example
/// activations of `ArchitectureSpec.Footprint`)). An estimate of the large terms, not a bound.
public struct TrainingMemory: Sendable {
    public let parameters: Double
    public let bytes: Double

    public init(
        spec: ArchitectureSpec, inputShape: [Int], classes: Int, dropout: Bool = false,
        options: TrainingOptions, examples: Int
    ) {
        let footprint = spec.footprint(inputShape: inputShape, classes: classes, dropout: dropout)
        let optimizerSlots: Double
        switch options.optimizer {
        case .sgd: optimizerSlots = options.momentum > 0 ? 1 : 0
        case .adam, .adamw: optimizerSlots = 2
        }
        let batch = Double(max(1, min(options.batchSize, examples)))
        let features = Double(inputShape.reduce(1, *))
        parameters = footprint.parameters
        bytes =
            4
            * (parameters * (3 + optimizerSlots) + batch
                * (features + footprint.activationsPerExample))
    }

    /// Refuses a run that needs more than `available` bytes (the machine's physical memory).
    /// - Throws: `TrainingError.invalidOption` with the architecture, its parameter count, the bytes
    ///   needed and the bytes there are.
    public func check(_ spec: ArchitectureSpec, available: Double = physicalMemoryBytes()) throws {
        guard available > 0, bytes > available else { return }
        let count =
            parameters >= 1e9
            ? "\(formatCount(parameters / 1e9)) billion"
            : parameters >= 1e6 ? "\(formatCount(parameters / 1e6)) million" : "\(Int(parameters))"
        throw TrainingError.invalidOption(
            "\(spec) has \(count) parameters: training it needs about \(formatBytes(bytes)) (weights, gradients, optimiser state, the best weights and a batch's activations), more than this machine's \(formatBytes(available)) of memory"
        )
    }

    private func formatCount(_ x: Double) -> String {
        x < 10 ? String(Double(Int(x * 10)) / 10) : String(Int(x.rounded()))
    }
}
