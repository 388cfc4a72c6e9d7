#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The learning rate as a function of the step (0-based): an optional linear warm-up, then a
/// decay.
///
/// - Warm-up: for `step < warmupSteps`, `base * (step + 1) / warmupSteps`.
/// - Then, with `k = step - warmupSteps`:
///   - `.constant`: `base`;
///   - `.step(every: E, factor: f)`: `base * f^(k / E)` (integer division), as PyTorch's `StepLR`;
///   - `.cosine(totalSteps: S, minimum: m)`: `m + (base - m) * (1 + cos(pi * k / (S - warmupSteps))) / 2`,
///     reaching `m` at step S and staying there (as the reference recipes' `LambdaLR`).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Decay: Sendable, Equatable {
        case constant
        case step(every: Int, factor: Float)
        case cosine(totalSteps: Int, minimum: Float)
    }

    public var base: Float
    public var decay: Decay
    public var warmupSteps: Int

    public init(base: Float, decay: Decay = .constant, warmupSteps: Int = 0) {
        self.base = base
        self.decay = decay
        self.warmupSteps = max(0, warmupSteps)
    }

    /// The learning rate to use for step `step`.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return base * Float(step + 1) / Float(warmupSteps) }
        let k = step - warmupSteps
        switch decay {
        case .constant:
            return base
        case .step(let every, let factor):
            return base * powf(factor, Float(k / max(every, 1)))
        case .cosine(let totalSteps, let minimum):
            let span = max(totalSteps - warmupSteps, 1)
            let progress = min(Double(k) / Double(span), 1)
            return minimum + (base - minimum) * Float((1 + cos(Double.pi * progress)) / 2)
        }
    }
}
