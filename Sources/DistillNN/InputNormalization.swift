/// How raw inputs become the floats a model sees: `x = (raw * scale - mean) / std`.
///
/// For byte images the default is `scale = 1/255, mean = 0, std = 1` (pixels in [0, 1], as the
/// reference recipes). A checkpoint records it, so a model file alone knows its preprocessing.
public struct InputNormalization: Equatable, Sendable, CustomStringConvertible {
    public var scale: Float
    public var mean: Float
    public var std: Float

    public init(scale: Float = 1, mean: Float = 0, std: Float = 1) {
        self.scale = scale
        self.mean = mean
        self.std = std
    }

    /// Pixels in [0, 255] to [0, 1].
    public static let bytesToUnit = InputNormalization(scale: 1.0 / 255, mean: 0, std: 1)
    /// Inputs already as the model wants them.
    public static let identity = InputNormalization()

    /// The text a checkpoint stores: `scale=...,mean=...,std=...`.
    public var description: String { "scale=\(scale),mean=\(mean),std=\(std)" }

    /// Parses `description`'s form.
    public init?(parsing text: String) {
        var values: [String: Float] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let v = Float(kv[1]), v.isFinite else { return nil }
            values[String(kv[0])] = v
        }
        guard let scale = values["scale"], let mean = values["mean"], let std = values["std"], std != 0,
              values.count == 3 else { return nil }
        self.init(scale: scale, mean: mean, std: std)
    }
}
