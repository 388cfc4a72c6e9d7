import DistillCore

/// Rebuilds layers from the one-token descriptors that `Layer.descriptor` gives and checkpoints
/// record, e.g. `linear:784:1200`, `conv2d:1:32:3x3:s1:p1`, `maxpool2d:2:s2`, `dropout:0.5`,
/// `relu`, `flatten`.
public enum LayerDescriptor {
    /// A layer for `token`, with fresh parameters (a checkpoint then loads their values).
    /// - Throws: `ArchitectureError` for an unknown or malformed token.
    public static func make(_ token: String, generator: inout SeededGenerator) throws -> any Layer {
        let parts = token.split(separator: ":").map(String.init)
        func int(_ i: Int, prefix: String = "") throws -> Int {
            guard i < parts.count, parts[i].hasPrefix(prefix), let n = Int(parts[i].dropFirst(prefix.count)),
                  n >= 0, n <= 1 << 24 else {
                throw ArchitectureError("malformed layer '\(token)'")
            }
            return n
        }
        switch parts.first {
        case "linear":
            guard parts.count == 3 else { throw ArchitectureError("malformed layer '\(token)'") }
            let (i, o) = (try int(1), try int(2))
            guard i >= 1, o >= 1 else { throw ArchitectureError("malformed layer '\(token)'") }
            return Linear(inputSize: i, outputSize: o, generator: &generator)
        case "conv2d":
            guard parts.count == 6 else { throw ArchitectureError("malformed layer '\(token)'") }
            let kernel = parts[3].split(separator: "x").compactMap { Int($0) }
            let (cin, cout, s, p) = (try int(1), try int(2), try int(4, prefix: "s"), try int(5, prefix: "p"))
            guard kernel.count == 2, kernel.allSatisfy({ $0 >= 1 && $0 <= 64 }), cin >= 1, cout >= 1, s >= 1 else {
                throw ArchitectureError("malformed layer '\(token)'")
            }
            return Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: (kernel[0], kernel[1]),
                          stride: s, padding: p, generator: &generator)
        case "maxpool2d":
            guard parts.count == 3 else { throw ArchitectureError("malformed layer '\(token)'") }
            let (k, s) = (try int(1), try int(2, prefix: "s"))
            guard k >= 1, s >= 1 else { throw ArchitectureError("malformed layer '\(token)'") }
            return MaxPool2D(kernel: k, stride: s)
        case "dropout":
            guard parts.count == 2, let p = Float(parts[1]), p >= 0, p < 1 else {
                throw ArchitectureError("malformed layer '\(token)'")
            }
            return Dropout(probability: p, generator: generator.split())
        case "relu" where parts.count == 1:
            return ReLU()
        case "flatten" where parts.count == 1:
            return Flatten()
        default:
            throw ArchitectureError("unknown layer '\(token)'")
        }
    }
}
