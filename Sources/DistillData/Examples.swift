import DistillCore

/// A set of examples held in memory as the data gives them (bytes for images, floats for
/// features), with optional labels. Inputs become normalised floats one batch at a time.
public struct Examples: Sendable {
    /// The raw inputs, `count * featureCount` values in example order.
    public enum Inputs: Sendable {
        case bytes([UInt8])
        case floats([Float])
    }

    public let inputs: Inputs
    /// The shape of one example: `[1, H, W]` for images, `[D]` for features.
    public let exampleShape: [Int]
    /// One label per example: a class in [0, classes), or `Examples.noLabel` for an unlabelled
    /// example; nil when the set has no labels at all.
    public let labels: [Int32]?
    /// The number of classes.
    public let classes: Int
    /// How raw inputs become model inputs.
    public let normalization: InputNormalization
    /// The number of examples.
    public let count: Int

    /// The label of an example without one (`DistillationLoss.noLabel`).
    public static let noLabel: Int32 = -1

    public init(
        inputs: Inputs, exampleShape: [Int], labels: [Int32]?, classes: Int,
        normalization: InputNormalization
    ) {
        self.inputs = inputs
        self.exampleShape = exampleShape
        self.labels = labels
        self.classes = classes
        self.normalization = normalization
        let features = exampleShape.reduce(1, *)
        switch inputs {
        case .bytes(let b): count = features > 0 ? b.count / features : 0
        case .floats(let f): count = features > 0 ? f.count / features : 0
        }
    }

    /// Values per example.
    public var featureCount: Int { exampleShape.reduce(1, *) }

    /// Whether the inputs are `[1, H, W]` (or `[C, H, W]`) images that can be translated.
    public var isImage: Bool { exampleShape.count == 3 }

    /// The examples in `range`, copied.
    public func subset(_ range: Range<Int>) -> Examples {
        let f = featureCount
        let part: Inputs
        switch inputs {
        case .bytes(let b): part = .bytes(Array(b[(range.lowerBound * f)..<(range.upperBound * f)]))
        case .floats(let x):
            part = .floats(Array(x[(range.lowerBound * f)..<(range.upperBound * f)]))
        }
        return Examples(
            inputs: part, exampleShape: exampleShape, labels: labels.map { Array($0[range]) },
            classes: classes, normalization: normalization)
    }

    /// The examples at `indices`, in that order, copied.
    public func selecting(_ indices: [Int]) -> Examples {
        let f = featureCount
        let part: Inputs
        switch inputs {
        case .bytes(let b): part = .bytes(indices.flatMap { b[($0 * f)..<(($0 + 1) * f)] })
        case .floats(let x): part = .floats(indices.flatMap { x[($0 * f)..<(($0 + 1) * f)] })
        }
        return Examples(
            inputs: part, exampleShape: exampleShape,
            labels: labels.map { l in indices.map { l[$0] } },
            classes: classes, normalization: normalization)
    }

    /// The same examples with labels kept for the first `n` only (the rest become unlabelled).
    public func keepingLabels(forFirst n: Int) -> Examples {
        guard let labels else { return self }
        let kept = labels.enumerated().map { $0.offset < n ? $0.element : Examples.noLabel }
        return Examples(
            inputs: inputs, exampleShape: exampleShape, labels: kept, classes: classes,
            normalization: normalization)
    }

    /// The number of examples with a label.
    public var labelledCount: Int { labels?.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } ?? 0 }

    /// Writes example `index`, normalised, to `destination` (`featureCount` floats).
    public func write(example index: Int, to destination: UnsafeMutablePointer<Float>) {
        let f = featureCount
        switch inputs {
        case .bytes(let b):
            let table = byteTable
            b.withUnsafeBufferPointer { src in
                for i in 0..<f { destination[i] = table[Int(src[index * f + i])] }
            }
        case .floats(let x):
            x.withUnsafeBufferPointer { src in
                for i in 0..<f { destination[i] = normalization.apply(src[index * f + i]) }
            }
        }
    }

    /// The normalised value of each byte 0...255.
    var byteTable: [Float] { (0..<256).map { normalization.apply(Float($0)) } }
}

/// The class names of Fashion-MNIST, in label order.
public let fashionMNISTClassNames = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle boot",
]
