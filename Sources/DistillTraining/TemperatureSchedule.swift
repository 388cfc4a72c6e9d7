#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A temperature that changes over a run (annealing), from `initial` at the first step to `final`
/// at the last:
///
/// - `.linear`: `T(k) = T0 + (T1 - T0) k / (K - 1)`;
/// - `.cosine`: `T(k) = T1 + (T0 - T1) (1 + cos(pi k / (K - 1))) / 2`;
///
/// for step `k` of `K`.
public struct TemperatureSchedule: Sendable, Equatable {
    public enum Shape: String, Sendable, CaseIterable { case linear, cosine }

    public var shape: Shape
    public var initial: Float
    public var final: Float

    public init(shape: Shape, initial: Float, final: Float) {
        self.shape = shape
        self.initial = initial
        self.final = final
    }

    /// The temperature for step `step` of `totalSteps`.
    public func temperature(at step: Int, of totalSteps: Int) -> Float {
        let progress = totalSteps > 1 ? min(1, Double(step) / Double(totalSteps - 1)) : 1
        switch shape {
        case .linear: return Float(Double(initial) + (Double(final) - Double(initial)) * progress)
        case .cosine:
            return Float(
                Double(final) + (Double(initial) - Double(final)) * (1 + cos(Double.pi * progress))
                    / 2)
        }
    }
}
