import DistillCore

/// An architecture in the short text form the CLI takes.
///
/// Grammar:
///
///     spec   := "mlp" [":" sizes] | "cnn:" sizes ["/fc:" sizes]
///             | "transformer:" "layers=" L "," "dim=" D "," "heads=" H "," "context=" N ["," "mlp=" M] [",tied"]
///             | "encoder:" "layers=" L "," "dim=" D "," "heads=" H "," "context=" N ["," "mlp=" M] ["," "buckets=" B]
///             | "window:" "dim=" D "," "hidden=" H ["," "radius=" R] ["," "context=" N] ["," "buckets=" B]
///     sizes  := positive integer ("," positive integer)*
///
/// - `mlp:1200,1200`: dense layers of 1,200 and 1,200 ReLU units, then the output layer.
///   `mlp` alone is a linear classifier. With dropout, `Dropout(inputDropout)` comes first and
///   `Dropout(dropout)` after every hidden ReLU (Hinton's teacher: `mlp:1200,1200`, 0.5 and 0.2).
/// - `cnn:32,64/fc:256`: per channel count a block `Conv2D(3x3, padding 1) -> MaxPool2D(2) ->
///   ReLU` (the same function as ReLU then pooling, at a quarter of the ReLU's cost), then `Flatten`, then dense ReLU layers of the `fc` sizes, then the output
///   layer. With dropout, `Dropout(dropout)` comes before every hidden dense layer (the reference
///   CNN teacher: dropout 0.3 on the flattened features).
/// - `transformer:layers=4,dim=256,heads=8,context=128`: a causal language model over token ids
///   (the classes are the vocabulary): `Embedding -> PositionEmbedding -> L x TransformerBlock
///   (pre-LayerNorm, GELU MLP of width M, 4D by default) -> LayerNorm -> Linear` to the
///   vocabulary's logits at every position. H must divide D; inputs are `[N]` ids with N at most
///   the context. With `tied` the head shares the token embedding's weight. `dropout` applies in
///   the blocks (see `TransformerBlock`).
/// - `encoder:layers=2,dim=128,heads=4,context=64`: a bidirectional tagger over words (the classes
///   are the tags): `FeatureEmbedding` of each word's `wordFeatureSlots` feature ids -> `PositionEmbedding`
///   -> L x TransformerBlock (not causal; padded positions are masked as keys) -> LayerNorm ->
///   Linear` to every word's tag logits. Inputs are `[N, wordFeatureSlots]` with N at most the
///   context (in words). The feature table has B rows (`buckets=`, 65,536 by default; the words'
///   features hash into them, see `WordFeatures`).
/// - `window:dim=64,hidden=256,radius=2,context=64`: a window tagger (Collobert et al. 2011):
///   `FeatureEmbedding -> WordWindow(R) -> Linear(H) -> ReLU -> Linear` to the tags: each word's
///   tags from its own features and its R neighbours' on each side (R = 2 and N = 64 by default).
public struct ArchitectureSpec: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case mlp, cnn, transformer, encoder, window }

    /// A window tagger's sizes.
    public struct WindowTagger: Equatable, Sendable {
        public let radius: Int, dimension: Int, hidden: Int, context: Int
        /// The rows of the word-feature table.
        public let buckets: Int
        public init(
            radius: Int, dimension: Int, hidden: Int, context: Int,
            buckets: Int = ArchitectureSpec.wordFeatureBuckets
        ) {
            (self.radius, self.dimension, self.hidden, self.context) = (
                radius, dimension, hidden, context
            )
            self.buckets = buckets
        }
    }

    /// A transformer's sizes.
    public struct Transformer: Equatable, Sendable {
        public let layers: Int, dimension: Int, heads: Int, context: Int, mlp: Int
        /// Whether the output head shares the token embedding's weight.
        public let tied: Bool
        /// An encoder's rows of the word-feature table.
        public let buckets: Int

        public init(
            layers: Int, dimension: Int, heads: Int, context: Int, mlp: Int? = nil,
            tied: Bool = false, buckets: Int = ArchitectureSpec.wordFeatureBuckets
        ) {
            (self.layers, self.dimension, self.heads, self.context) = (
                layers, dimension, heads, context
            )
            self.mlp = mlp ?? 4 * dimension
            self.tied = tied
            self.buckets = buckets
        }
    }

    public let kind: Kind
    /// Channel counts of the convolution blocks (empty for an MLP).
    public let convolutionChannels: [Int]
    /// Sizes of the hidden dense layers.
    public let hiddenSizes: [Int]
    /// A transformer's or an encoder's sizes (nil for the other kinds).
    public let transformer: Transformer?
    /// A window tagger's sizes (nil for the other kinds).
    public let window: WindowTagger?

    /// Feature ids per word that the taggers (`encoder`, `window`) take, and the size of the
    /// table they share: `WordFeatures`'s (in DistillData).
    public static let wordFeatureSlots = 6
    public static let wordFeatureBuckets = 1 << 16

    /// The context of a sequence model (words or tokens per row), nil for the other kinds.
    public var context: Int? { transformer?.context ?? window?.context }

    /// Parses `text`.
    /// - Throws: `ArchitectureError` saying what is wrong and showing the grammar.
    public init(parsing text: String) throws {
        let grammar =
            "expected mlp[:H1,H2,...], cnn:C1,C2,...[/fc:H1,...], transformer:layers=L,dim=D,heads=H,context=N[,mlp=M], encoder:layers=L,dim=D,heads=H,context=N[,mlp=M,buckets=B] or window:dim=D,hidden=H[,radius=R,context=N,buckets=B], e.g. mlp:1200,1200, cnn:32,64/fc:256, transformer:layers=2,dim=64,heads=4,context=128, encoder:layers=2,dim=128,heads=4,context=64 or window:dim=64,hidden=256"
        func sizes(_ s: Substring, _ what: String) throws -> [Int] {
            let parts = s.split(separator: ",", omittingEmptySubsequences: false)
            return try parts.map { part in
                guard let n = Int(part.trimmingCharacters(in: " ")), n >= 1, n <= 1 << 20 else {
                    throw ArchitectureError(
                        "architecture '\(text)': '\(part)' is not a valid \(what) (a whole number from 1 to 1048576); \(grammar)"
                    )
                }
                return n
            }
        }
        if text == "mlp" {
            self.init(kind: .mlp, convolutionChannels: [], hiddenSizes: [])
        } else if text.hasPrefix("mlp:") {
            self.init(
                kind: .mlp, convolutionChannels: [],
                hiddenSizes: try sizes(text.dropFirst(4), "layer size"))
        } else if text.hasPrefix("cnn:") {
            let body = text.dropFirst(4)
            let pieces = body.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else {
                throw ArchitectureError("architecture '\(text)': too many '/'; \(grammar)")
            }
            let channels = try sizes(pieces[0], "channel count")
            var hidden: [Int] = []
            if pieces.count == 2 {
                guard pieces[1].hasPrefix("fc:") else {
                    throw ArchitectureError(
                        "architecture '\(text)': after '/' expected fc:H1,...; \(grammar)")
                }
                hidden = try sizes(pieces[1].dropFirst(3), "layer size")
            }
            self.init(kind: .cnn, convolutionChannels: channels, hiddenSizes: hidden)
        } else if text.hasPrefix("transformer:") || text.hasPrefix("encoder:") {
            let encoder = text.hasPrefix("encoder:")
            let values = try ArchitectureSpec.keyValues(
                text,
                keys: ["layers", "dim", "heads", "context", "mlp"] + (encoder ? ["buckets"] : []),
                flag: encoder ? nil : "tied", grammar: grammar, sizes: sizes)
            guard let layers = values["layers"], let dim = values["dim"],
                let heads = values["heads"],
                let context = values["context"]
            else {
                throw ArchitectureError(
                    "architecture '\(text)': a transformer needs layers=, dim=, heads= and context=; \(grammar)"
                )
            }
            guard dim % heads == 0 else {
                throw ArchitectureError(
                    "architecture '\(text)': heads=\(heads) does not divide dim=\(dim)")
            }
            try ArchitectureSpec.checkBuckets(values["buckets"], text)
            let shape = Transformer(
                layers: layers, dimension: dim, heads: heads, context: context,
                mlp: values["mlp"], tied: values["tied"] != nil,
                buckets: values["buckets"] ?? ArchitectureSpec.wordFeatureBuckets)
            self.init(transformer: shape, encoder: encoder)
        } else if text.hasPrefix("window:") {
            let values = try ArchitectureSpec.keyValues(
                text, keys: ["radius", "dim", "hidden", "context", "buckets"], flag: nil,
                grammar: grammar, sizes: sizes, zeroAllowed: ["radius"])
            try ArchitectureSpec.checkBuckets(values["buckets"], text)
            guard let dim = values["dim"], let hidden = values["hidden"] else {
                throw ArchitectureError(
                    "architecture '\(text)': a window tagger needs dim= and hidden=; \(grammar)")
            }
            self.init(
                window: WindowTagger(
                    radius: values["radius"] ?? 2, dimension: dim, hidden: hidden,
                    context: values["context"] ?? 64,
                    buckets: values["buckets"] ?? ArchitectureSpec.wordFeatureBuckets))
        } else {
            throw ArchitectureError("unknown architecture '\(text)': \(grammar)")
        }
    }

    /// A tagger's table needs padding and at least one bucket of features; at most 2^24 rows.
    private static func checkBuckets(_ buckets: Int?, _ text: String) throws {
        if let buckets, buckets < 16 || buckets > 1 << 24 {
            throw ArchitectureError(
                "architecture '\(text)': buckets=\(buckets) must be from 16 to 16777216")
        }
    }

    /// The `key=value` pairs (and an optional bare `flag`, as 1) after a spec's `name:`.
    private static func keyValues(
        _ text: String, keys: [String], flag: String?, grammar: String,
        sizes: (Substring, String) throws -> [Int], zeroAllowed: Set<String> = []
    ) throws -> [String: Int] {
        var values: [String: Int] = [:]
        let body = text.drop { $0 != ":" }.dropFirst()
        for part in body.split(separator: ",", omittingEmptySubsequences: false) {
            if let flag, part == flag, values[flag] == nil {
                values[flag] = 1
                continue
            }
            let pair = part.split(separator: "=", omittingEmptySubsequences: false)
            guard pair.count == 2, keys.contains(String(pair[0])), values[String(pair[0])] == nil
            else {
                let allowed = keys.map { $0 + "=" } + (flag.map { [$0] } ?? [])
                throw ArchitectureError(
                    "architecture '\(text)': '\(part)' is not one of \(allowed.joined(separator: ", ")) (each once); \(grammar)"
                )
            }
            let key = String(pair[0])
            if zeroAllowed.contains(key), pair[1] == "0" {
                values[key] = 0
            } else {
                values[key] = try sizes(pair[1], key)[0]
            }
        }
        return values
    }

    public init(kind: Kind, convolutionChannels: [Int], hiddenSizes: [Int]) {
        self.kind = kind
        self.convolutionChannels = convolutionChannels
        self.hiddenSizes = hiddenSizes
        self.transformer = nil
        self.window = nil
    }

    /// A causal transformer language model, or with `encoder` a bidirectional tagger.
    public init(transformer: Transformer, encoder: Bool = false) {
        (kind, convolutionChannels, hiddenSizes) = (encoder ? .encoder : .transformer, [], [])
        self.transformer = transformer
        self.window = nil
    }

    public init(window: WindowTagger) {
        (kind, convolutionChannels, hiddenSizes) = (.window, [], [window.hidden])
        self.transformer = nil
        self.window = window
    }

    public var description: String {
        let hidden = hiddenSizes.map(String.init).joined(separator: ",")
        switch kind {
        case .mlp: return hiddenSizes.isEmpty ? "mlp" : "mlp:\(hidden)"
        case .cnn:
            let conv = "cnn:" + convolutionChannels.map(String.init).joined(separator: ",")
            return hiddenSizes.isEmpty ? conv : conv + "/fc:" + hidden
        case .window:
            let w = window!
            return
                "window:radius=\(w.radius),dim=\(w.dimension),hidden=\(w.hidden),context=\(w.context)"
                + (w.buckets == ArchitectureSpec.wordFeatureBuckets ? "" : ",buckets=\(w.buckets)")
        case .transformer, .encoder:
            let t = transformer!
            return
                (kind == .encoder ? "encoder" : "transformer")
                + ":layers=\(t.layers),dim=\(t.dimension),heads=\(t.heads),context=\(t.context)"
                + (t.mlp == 4 * t.dimension ? "" : ",mlp=\(t.mlp)") + (t.tied ? ",tied" : "")
                + (t.buckets == ArchitectureSpec.wordFeatureBuckets ? "" : ",buckets=\(t.buckets)")
        }
    }

    /// What a network of this spec holds, counted without building it. Counts are Doubles: a spec
    /// can name more scalars than fit in memory (or in an `Int`), which is what this is for.
    public struct Footprint: Sendable, Equatable {
        /// Trainable scalars (weights and biases).
        public let parameters: Double
        /// Floats a training step holds per example: every layer's output and its gradient, and
        /// the convolutions' unfolded 3x3 columns.
        public let activationsPerExample: Double
    }

    /// The footprint of the network `build` makes for `inputShape` and `classes` (dropout adds
    /// its mask to each output it follows: counted as one more output).
    public func footprint(inputShape: [Int], classes: Int, dropout: Bool = false) -> Footprint {
        var parameters = 0.0
        var outputs = 0.0
        var columns = 0.0
        func dense(_ width: Double, _ size: Double) {
            parameters += width * size + size
            outputs += size * (dropout ? 3 : 2)  // linear, ReLU (and dropout) outputs
        }
        if let w = window {
            let (d, h, v) = (Double(w.dimension), Double(w.hidden), Double(classes))
            let positions = Double(min(inputShape.first ?? 1, w.context))
            let windowWidth = Double(2 * w.radius + 1) * d
            parameters =
                Double(w.buckets) * d + windowWidth * h + h + h * v + v
            outputs = positions * (d + windowWidth + 2 * h + v)
            return Footprint(parameters: parameters, activationsPerExample: 2 * outputs)
        }
        if let t = transformer {
            let (d, m, v) = (Double(t.dimension), Double(t.mlp), Double(classes))
            let encoder = kind == .encoder
            let positions = Double(
                min(encoder ? inputShape.first ?? 1 : inputShape.reduce(1, *), t.context))
            let block = 4 * d * d + 2 * d * m + 9 * d + m
            let table = encoder ? Double(t.buckets) * d : v * d
            parameters =
                table + Double(t.context) * d + Double(t.layers) * block + 2 * d
                + (t.tied ? 0 : d * v) + v
            // Per position and block: LayerNorms, q k v, the heads' scores, outputs, the MLP.
            let perBlock = 10 * d + 2 * m + Double(t.heads) * positions
            outputs = positions * (2 * d + Double(t.layers) * perBlock + d + v)
            return Footprint(parameters: parameters, activationsPerExample: 2 * outputs)
        }
        var width = Double(inputShape.reduce(1, *))
        if kind == .cnn && inputShape.count == 3 {
            var (channels, height, side) = (
                Double(inputShape[0]), Double(inputShape[1]), Double(inputShape[2])
            )
            for c in convolutionChannels.map(Double.init) {
                parameters += channels * 9 * c + c
                columns += channels * 9 * height * side
                let pooled = c * (height / 2).rounded(.down) * (side / 2).rounded(.down)
                outputs += c * height * side + 2 * pooled  // convolution, pooling and ReLU outputs
                (channels, height, side) = (
                    c, (height / 2).rounded(.down), (side / 2).rounded(.down)
                )
            }
            width = channels * height * side
        }
        for size in hiddenSizes.map(Double.init) {
            dense(width, size)
            width = size
        }
        parameters += width * Double(classes) + Double(classes)
        outputs += Double(classes)
        return Footprint(parameters: parameters, activationsPerExample: 2 * outputs + columns)
    }

    /// Builds the network for examples of `inputShape` (`[D]` or `[channels, H, W]`; an MLP takes
    /// any shape, flattened) and `classes` outputs, drawing weights and dropout seeds from
    /// `generator`.
    /// - Throws: `ArchitectureError` when the input does not fit (a CNN needs `[C, H, W]` large
    ///   enough for its poolings), or the dropout probabilities are outside [0, 1).
    public func build(
        inputShape: [Int], classes: Int, dropout: Float = 0, inputDropout: Float = 0,
        generator: inout SeededGenerator
    ) throws -> Sequential {
        guard classes >= 1 else {
            throw ArchitectureError("the class count must be at least 1, got \(classes)")
        }
        for (name, p) in [("dropout", dropout), ("input dropout", inputDropout)]
        where !(p >= 0 && p < 1) {
            throw ArchitectureError("\(name) must be in [0, 1), got \(p)")
        }
        var layers: [any Layer] = []
        func dense(_ width: Int, _ size: Int, initialization: Initialization) {
            layers.append(
                Linear(
                    inputSize: width, outputSize: size, initialization: initialization,
                    generator: &generator))
        }
        switch kind {
        case .mlp:
            var width = inputShape.reduce(1, *)
            if inputDropout > 0 {
                layers.append(Dropout(probability: inputDropout, generator: generator.split()))
            }
            for size in hiddenSizes {
                dense(width, size, initialization: .he)
                layers.append(ReLU())
                if dropout > 0 {
                    layers.append(Dropout(probability: dropout, generator: generator.split()))
                }
                width = size
            }
            dense(width, classes, initialization: .glorot)
        case .cnn:
            guard inputShape.count == 3 else {
                throw ArchitectureError(
                    "a cnn needs image input [channels, height, width], got \(inputShape)")
            }
            var (channels, height, width) = (inputShape[0], inputShape[1], inputShape[2])
            if inputDropout > 0 {
                layers.append(Dropout(probability: inputDropout, generator: generator.split()))
            }
            for c in convolutionChannels {
                guard height >= 2, width >= 2 else {
                    throw ArchitectureError(
                        "cnn: the image is \(height)x\(width) before a 2x2 pooling; use fewer convolution blocks"
                    )
                }
                layers.append(
                    Conv2D(
                        inputChannels: channels, outputChannels: c, kernelSize: (3, 3), padding: 1,
                        generator: &generator))
                // Pooling before the ReLU equals pooling after it (both are monotone), forward and
                // backward, and the ReLU then touches a quarter of the elements.
                layers.append(MaxPool2D(kernel: 2))
                layers.append(ReLU())
                (channels, height, width) = (c, height / 2, width / 2)
            }
            layers.append(Flatten())
            var features = channels * height * width
            for size in hiddenSizes {
                if dropout > 0 {
                    layers.append(Dropout(probability: dropout, generator: generator.split()))
                }
                dense(features, size, initialization: .he)
                layers.append(ReLU())
                features = size
            }
            dense(features, classes, initialization: .glorot)
        case .window:
            let w = window!
            try ArchitectureSpec.checkWordInput(inputShape, context: w.context)
            layers.append(
                FeatureEmbedding(
                    vocabulary: w.buckets, slots: ArchitectureSpec.wordFeatureSlots,
                    dimension: w.dimension,
                    generator: &generator))
            layers.append(WordWindow(radius: w.radius))
            if inputDropout > 0 {
                layers.append(Dropout(probability: inputDropout, generator: generator.split()))
            }
            dense((2 * w.radius + 1) * w.dimension, w.hidden, initialization: .he)
            layers.append(ReLU())
            if dropout > 0 {
                layers.append(Dropout(probability: dropout, generator: generator.split()))
            }
            dense(w.hidden, classes, initialization: .glorot)
        case .transformer, .encoder:
            let t = transformer!
            let encoder = kind == .encoder
            if encoder {
                try ArchitectureSpec.checkWordInput(inputShape, context: t.context)
            } else {
                guard inputShape.count == 1, inputShape[0] <= t.context else {
                    throw ArchitectureError(
                        "a transformer of context \(t.context) takes token ids [N] with N <= \(t.context), got \(inputShape)"
                    )
                }
            }
            guard inputDropout == 0 else {
                throw ArchitectureError(
                    "a transformer takes --dropout (in its blocks), not input dropout")
            }
            layers.append(
                encoder
                    ? FeatureEmbedding(
                        vocabulary: t.buckets, slots: ArchitectureSpec.wordFeatureSlots,
                        dimension: t.dimension, generator: &generator)
                    : Embedding(vocabulary: classes, dimension: t.dimension, generator: &generator))
            layers.append(
                PositionEmbedding(context: t.context, dimension: t.dimension, generator: &generator)
            )
            for _ in 0..<t.layers {
                layers.append(
                    TransformerBlock(
                        dimension: t.dimension, heads: t.heads, mlp: t.mlp, causal: !encoder,
                        dropout: dropout,
                        generator: &generator))
            }
            layers.append(LayerNorm(dimension: t.dimension))
            if t.tied, let embedding = layers.first as? Embedding {
                layers.append(Linear(tiedTo: embedding.weight))
            } else {
                dense(t.dimension, classes, initialization: .glorot)
            }
        }
        return Sequential(layers)
    }
}

extension ArchitectureSpec {
    /// Checks that a tagger of `context` words takes `inputShape`: `[N, wordFeatureSlots]`, N at
    /// most the context.
    fileprivate static func checkWordInput(_ inputShape: [Int], context: Int) throws {
        guard inputShape.count == 2, inputShape[0] <= context, inputShape[1] == wordFeatureSlots
        else {
            throw ArchitectureError(
                "a tagger of context \(context) takes word features [N, \(wordFeatureSlots)] with N <= \(context), got \(inputShape)"
            )
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return s
    }
}
