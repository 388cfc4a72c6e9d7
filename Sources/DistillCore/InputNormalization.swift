/// How raw inputs become the floats a model sees: `x = (raw / divisor - mean) / std`.
///
/// For byte images the default is `divisor = 255, mean = 0, std = 1`: pixels in [0, 1], computed
/// as `Float(raw) / 255` exactly as the PyTorch reference recipes do. A checkpoint records it, so a
/// model file alone knows its preprocessing.
public struct InputNormalization: Equatable, Sendable, CustomStringConvertible {
    public var divisor: Float
    public var mean: Float
    public var std: Float

    public init(divisor: Float = 1, mean: Float = 0, std: Float = 1) {
        self.divisor = divisor
        self.mean = mean
        self.std = std
    }

    /// Pixels in [0, 255] to [0, 1].
    public static let bytesToUnit = InputNormalization(divisor: 255, mean: 0, std: 1)
    /// Inputs already as the model wants them.
    public static let identity = InputNormalization()

    /// The text a checkpoint stores: `divisor=...,mean=...,std=...`.
    public var description: String { "divisor=\(divisor),mean=\(mean),std=\(std)" }

    /// The normalised value of a raw input.
    @inlinable public func apply(_ raw: Float) -> Float { (raw / divisor - mean) / std }

    /// Parses `description`'s form.
    public init?(parsing text: String) {
        var values: [String: Float] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let v = Float(kv[1]), v.isFinite else { return nil }
            values[String(kv[0])] = v
        }
        guard let divisor = values["divisor"], let mean = values["mean"], let std = values["std"],
            std != 0,
            divisor != 0, values.count == 3
        else { return nil }
        self.init(divisor: divisor, mean: mean, std: std)
    }
}
