/// How many training examples are held out, from the end of the training set, to make choices
/// (epochs, T, alpha) without looking at the test set.
public enum ValidationSplit: Equatable, Sendable, CustomStringConvertible {
    /// 5,000 examples or 10% of the training set, whichever is smaller.
    case automatic
    /// A number of examples.
    case count(Int)
    /// A fraction of the training set, in (0, 1).
    case fraction(Double)

    /// Parses `5000` (examples) or `0.1` (a fraction).
    public init?(_ text: String) {
        if let n = Int(text), n >= 0 {
            self = .count(n)
            return
        }
        if let f = Double(text), f > 0, f < 1 {
            self = .fraction(f)
            return
        }
        return nil
    }

    /// The number of validation examples for a training set of `n`.
    public func size(forTrainingCount n: Int) -> Int {
        switch self {
        case .automatic: return min(5000, n / 10)
        case .count(let c): return c
        case .fraction(let f): return Int((Double(n) * f).rounded())
        }
    }

    public var description: String {
        switch self {
        case .automatic: return "automatic (min(5000, 10%))"
        case .count(let c): return "\(c)"
        case .fraction(let f): return "\(f)"
        }
    }
}

extension Examples {
    /// Splits off the last examples as a validation set.
    /// - Throws: `DataError` if the split would leave no training example.
    public func splittingValidation(_ split: ValidationSplit) throws -> (
        training: Examples, validation: Examples
    ) {
        let v = split.size(forTrainingCount: count)
        guard v < count else {
            throw DataError(
                "the validation split (\(v) examples) would leave no training examples out of \(count)"
            )
        }
        return (subset(0..<(count - v)), subset((count - v)..<count))
    }
}

/// A problem with a dataset as a whole (the message names what and where).
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
