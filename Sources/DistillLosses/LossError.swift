/// Why a loss refused its inputs. Every case says what is wrong in words a user can act on.
public enum LossError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A logit or probability is NaN or infinite.
    case nonFinite(input: String, row: Int, column: Int, value: Float)
    /// The temperature is zero, negative, or not finite.
    case invalidTemperature(Float)
    /// The weight alpha is outside [0, 1].
    case invalidAlpha(Float)
    /// A label is outside [0, classes) and is neither the ignore label nor the "no label" marker.
    case labelOutOfRange(row: Int, label: Int, classes: Int)
    /// Two inputs disagree on their size.
    case shapeMismatch(String)
    /// A teacher probability row is negative somewhere or sums to zero.
    case invalidProbabilities(row: Int, reason: String)
    /// The loss needs labels (alpha < 1, or the hard term) and none were given.
    case labelsRequired

    public var description: String {
        switch self {
        case .nonFinite(let input, let row, let column, let value):
            return "\(input) has a non-finite value \(value) at row \(row), column \(column)"
        case .invalidTemperature(let t):
            return "temperature must be a finite number > 0, got \(t)"
        case .invalidAlpha(let a):
            return "alpha must be in [0, 1], got \(a)"
        case .labelOutOfRange(let row, let label, let classes):
            return "label \(label) at row \(row) is outside [0, \(classes))"
        case .shapeMismatch(let what):
            return "shape mismatch: \(what)"
        case .invalidProbabilities(let row, let reason):
            return "teacher probabilities at row \(row): \(reason)"
        case .labelsRequired:
            return
                "labels are required when alpha < 1 (or use alpha = 1 for soft-only distillation)"
        }
    }
}
