import DistillCore

/// Rebuilds layers from the one-token descriptors that `Layer.descriptor` gives and checkpoints
/// record, e.g. `linear:784:1200`, `conv2d:1:32:3x3:s1:p1`, `maxpool2d:2:s2`, `dropout:0.5`,
/// `relu`, `flatten`, `embedding:256:64`, `position:128:64`, `layernorm:64`, `gelu`, `gelu:tanh`,
/// `attention:64:4:causal`, `block:64:4:256:causal`, `features:65536:6:64`, `window:2`.
public enum LayerDescriptor {
    /// A layer for `token`, with fresh parameters (a checkpoint then loads their values).
    /// - Throws: `ArchitectureError` for an unknown or malformed token.
    public static func make(_ token: String, generator: inout SeededGenerator) throws -> any Layer {
        switch try Parsed(token) {
        case .linear(let i, let o, let tied):
            guard !tied else {
                throw ArchitectureError(
                    "'\(token)' is tied to an embedding: build it with the network")
            }
            return Linear(inputSize: i, outputSize: o, generator: &generator)
        case .conv2d(let cin, let cout, let kernel, let s, let p):
            return Conv2D(
                inputChannels: cin, outputChannels: cout, kernelSize: kernel, stride: s, padding: p,
                generator: &generator)
        case .maxpool2d(let k, let s): return MaxPool2D(kernel: k, stride: s)
        case .dropout(let p): return Dropout(probability: p, generator: generator.split())
        case .relu: return ReLU()
        case .flatten: return Flatten()
        case .embedding(let v, let c):
            return Embedding(vocabulary: v, dimension: c, generator: &generator)
        case .position(let t, let c):
            return PositionEmbedding(context: t, dimension: c, generator: &generator)
        case .layerNorm(let c): return LayerNorm(dimension: c)
        case .gelu(let approximation): return GELU(approximation: approximation)
        case .attention(let c, let heads, let causal):
            return SelfAttention(dimension: c, heads: heads, causal: causal, generator: &generator)
        case .block(let c, let heads, let mlp, let dropout, let causal):
            return TransformerBlock(
                dimension: c, heads: heads, mlp: mlp, causal: causal, dropout: dropout,
                generator: &generator)
        case .features(let v, let slots, let c):
            return FeatureEmbedding(
                vocabulary: v, slots: slots, dimension: c, generator: &generator)
        case .window(let r): return WordWindow(radius: r)
        }
    }

    /// The layers `tokens` describe, in order, with fresh parameters; a tied head
    /// (`linear:C:V:tied`) shares the weight of the last embedding before it.
    /// - Throws: `ArchitectureError` for an unknown or malformed token, or a tied head with no
    ///   embedding of its shape before it.
    public static func layers(_ tokens: [String], generator: inout SeededGenerator) throws
        -> [any Layer]
    {
        var layers: [any Layer] = []
        for token in tokens {
            if token.hasSuffix(":tied") {
                guard let embedding = layers.last(where: { $0 is Embedding }) as? Embedding,
                    token == "linear:\(embedding.dimension):\(embedding.vocabulary):tied"
                else {
                    throw ArchitectureError("layer '\(token)' is tied to no embedding of its shape")
                }
                layers.append(Linear(tiedTo: embedding.weight))
            } else {
                layers.append(try make(token, generator: &generator))
            }
        }
        return layers
    }

    /// The trainable scalars of the layer `token` describes, counted without building it (so that
    /// a file cannot make a loader allocate more than the file holds).
    /// - Throws: `ArchitectureError` for an unknown or malformed token.
    public static func parameterCount(_ token: String) throws -> Double {
        switch try Parsed(token) {
        case .linear(let i, let o, let tied):
            return tied ? Double(o) : Double(i) * Double(o) + Double(o)
        case .conv2d(let cin, let cout, let kernel, _, _):
            return Double(cin) * Double(cout) * Double(kernel.0 * kernel.1) + Double(cout)
        case .embedding(let a, let c), .position(let a, let c), .features(let a, _, let c):
            return Double(a) * Double(c)
        case .layerNorm(let c): return 2 * Double(c)
        case .attention(let c, _, _): return 4 * Double(c) * Double(c) + 4 * Double(c)
        case .block(let c, _, let m, _, _):
            let (d, h) = (Double(c), Double(m))
            return 4 * d * d + 2 * d * h + 9 * d + h  // attention, two LayerNorms, the MLP
        case .maxpool2d, .dropout, .relu, .flatten, .gelu, .window: return 0
        }
    }

    /// A token's layer and its numbers.
    private enum Parsed {
        case linear(Int, Int, tied: Bool)
        case conv2d(Int, Int, (Int, Int), stride: Int, padding: Int)
        case maxpool2d(Int, stride: Int)
        case dropout(Float)
        case relu, flatten
        case embedding(Int, Int)
        case position(Int, Int)
        case layerNorm(Int)
        case gelu(GELU.Approximation)
        case attention(Int, heads: Int, causal: Bool)
        case block(Int, heads: Int, mlp: Int, dropout: Float, causal: Bool)
        case features(Int, slots: Int, Int)
        case window(Int)

        init(_ token: String) throws {
            let parts = token.split(separator: ":").map(String.init)
            let malformed = ArchitectureError("malformed layer '\(token)'")
            func int(_ i: Int, prefix: String = "") throws -> Int {
                guard i < parts.count, parts[i].hasPrefix(prefix),
                    let n = Int(parts[i].dropFirst(prefix.count)),
                    n >= 0, n <= 1 << 24
                else { throw malformed }
                return n
            }
            switch parts.first {
            case "linear":
                guard parts.count == 3 || (parts.count == 4 && parts[3] == "tied") else {
                    throw malformed
                }
                let (i, o) = (try int(1), try int(2))
                guard i >= 1, o >= 1 else { throw malformed }
                self = .linear(i, o, tied: parts.count == 4)
            case "conv2d":
                guard parts.count == 6 else { throw malformed }
                let kernel = parts[3].split(separator: "x").compactMap { Int($0) }
                let (cin, cout, s, p) = (
                    try int(1), try int(2), try int(4, prefix: "s"), try int(5, prefix: "p")
                )
                guard kernel.count == 2, kernel.allSatisfy({ $0 >= 1 && $0 <= 64 }), cin >= 1,
                    cout >= 1, s >= 1
                else {
                    throw malformed
                }
                self = .conv2d(cin, cout, (kernel[0], kernel[1]), stride: s, padding: p)
            case "maxpool2d":
                guard parts.count == 3 else { throw malformed }
                let (k, s) = (try int(1), try int(2, prefix: "s"))
                guard k >= 1, s >= 1 else { throw malformed }
                self = .maxpool2d(k, stride: s)
            case "dropout":
                guard parts.count == 2, let p = Float(parts[1]), p >= 0, p < 1 else {
                    throw malformed
                }
                self = .dropout(p)
            case "embedding", "position":
                guard parts.count == 3 else { throw malformed }
                let (a, c) = (try int(1), try int(2))
                guard a >= 1, c >= 1 else { throw malformed }
                self = parts[0] == "embedding" ? .embedding(a, c) : .position(a, c)
            case "features":
                guard parts.count == 4 else { throw malformed }
                let (v, slots, c) = (try int(1), try int(2), try int(3))
                guard v >= 2, slots >= 1, c >= 1 else { throw malformed }
                self = .features(v, slots: slots, c)
            case "window":
                guard parts.count == 2 else { throw malformed }
                let r = try int(1)
                guard r >= 0, r <= 64 else { throw malformed }
                self = .window(r)
            case "layernorm":
                guard parts.count == 2 else { throw malformed }
                let c = try int(1)
                guard c >= 1 else { throw malformed }
                self = .layerNorm(c)
            case "attention":
                guard parts.count == 3 || (parts.count == 4 && parts[3] == "causal") else {
                    throw malformed
                }
                let (c, heads) = (try int(1), try int(2))
                guard c >= 1, heads >= 1, c % heads == 0 else { throw malformed }
                self = .attention(c, heads: heads, causal: parts.count == 4)
            case "block":
                // block:C:NH:M, then optionally :dP (dropout) and :causal, in that order.
                var rest = parts.dropFirst(4)
                var dropout: Float = 0
                if let d = rest.first, d.hasPrefix("d") {
                    guard let p = Float(d.dropFirst()), p >= 0, p < 1 else { throw malformed }
                    dropout = p
                    rest = rest.dropFirst()
                }
                let causal = rest.first == "causal"
                if causal { rest = rest.dropFirst() }
                guard parts.count >= 4, rest.isEmpty else { throw malformed }
                let (c, heads, mlp) = (try int(1), try int(2), try int(3))
                guard c >= 1, heads >= 1, c % heads == 0, mlp >= 1 else { throw malformed }
                self = .block(c, heads: heads, mlp: mlp, dropout: dropout, causal: causal)
            case "gelu" where parts.count == 1: self = .gelu(.exact)
            case "gelu" where parts.count == 2 && parts[1] == "tanh": self = .gelu(.tanh)
            case "relu" where parts.count == 1: self = .relu
            case "flatten" where parts.count == 1: self = .flatten
            default: throw ArchitectureError("unknown layer '\(token)'")
            }
        }
    }
}
