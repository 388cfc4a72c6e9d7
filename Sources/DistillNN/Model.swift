import DistillCore

/// A classifier: a network, the shape of one example, the class count and the input
/// normalisation, everything a checkpoint needs to rebuild it.
public final class Model {
    public let network: Sequential
    /// The shape of one example as the data gives it, e.g. `[1, 28, 28]` or `[784]`.
    public let inputShape: [Int]
    public let classes: Int
    public var normalization: InputNormalization
    /// The architecture text the model was built from (`ArchitectureSpec`), or "" if built by hand.
    public var architecture: String
    /// Free-form facts recorded at training time (data, seed, T, alpha, metrics), saved with it.
    public var metadata: [String: String]

    /// The shape of one example as the network takes it: `inputShape`, flattened when the network
    /// starts with a dense layer (possibly after dropout).
    package let networkInputShape: [Int]
    private var inputView = Tensor(zeros: [0])
    private lazy var blocks = network.layers.compactMap { $0 as? TransformerBlock }
    private var inference = Tensor(zeros: [0])

    /// - Throws: `ArchitectureError` when the network does not take `inputShape` or does not end
    ///   in `classes` outputs.
    public init(
        network: Sequential, inputShape: [Int], classes: Int,
        normalization: InputNormalization = .identity, architecture: String = "",
        metadata: [String: String] = [:]
    ) throws {
        self.network = network
        self.inputShape = inputShape
        self.classes = classes
        self.normalization = normalization
        self.architecture = architecture
        self.metadata = metadata
        // A network starting with a dense layer (possibly after dropout) takes flat examples.
        let firstShaped = network.layers.first { !($0 is Dropout) }
        networkInputShape = firstShaped is Linear ? [inputShape.reduce(1, *)] : inputShape
        let out = try network.outputShape(for: [1] + networkInputShape)
        guard out.count >= 2, out.first == 1, out.last == classes else {
            throw ArchitectureError(
                "the network maps \(inputShape) to \(Array(out.dropFirst())), expected [\(classes)] classes"
            )
        }
        network.computesInputGradient = false
    }

    /// Builds a fresh model from an architecture spec.
    public convenience init(
        spec: ArchitectureSpec, inputShape: [Int], classes: Int, dropout: Float = 0,
        inputDropout: Float = 0, normalization: InputNormalization = .identity,
        generator: inout SeededGenerator
    ) throws {
        let network = try spec.build(
            inputShape: inputShape, classes: classes, dropout: dropout,
            inputDropout: inputDropout, generator: &generator)
        try self.init(
            network: network, inputShape: inputShape, classes: classes,
            normalization: normalization, architecture: spec.description)
    }

    /// Rows of logits per example: 1 for a classifier, one per position for a sequence model
    /// (whose `forward` gives `[N * positions, classes]`, example by example, position by position).
    public var positions: Int {
        if inputShape.count == 1 && network.layers.first is Embedding { return inputShape[0] }
        return network.layers.first is FeatureEmbedding ? inputShape[0] : 1
    }

    /// Whether the model tags words: it takes `[N, slots]` word features (`FeatureEmbedding`) and
    /// gives tag logits for each of the N positions.
    public var isTagger: Bool { network.layers.first is FeatureEmbedding }

    /// The size of a tagger's feature table (the buckets its word features hash to); nil for
    /// other models.
    public var featureBuckets: Int? { (network.layers.first as? FeatureEmbedding)?.vocabulary }

    /// Trainable parameters in checkpoint order.
    public var parameters: [Parameter] { network.parameters }

    /// The number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Logits `[N * positions, classes]` for a batch `[N] + inputShape` (any shape with that many elements per
    /// example). The result belongs to the model and is overwritten by the next call.
    public func forward(_ batch: Tensor, mode: Mode) -> Tensor {
        let n = batch.shape.first ?? 0
        if batch.storage !== inputView.storage || inputView.shape.first != n
            || inputView.count != batch.count
        {
            inputView = batch.reshaped([n] + networkInputShape)
        }
        if let features = network.layers.first as? FeatureEmbedding, !blocks.isEmpty {
            // Padded positions (all feature ids 0) are no keys for the attention.
            let padding = features.padding(of: inputView)
            for block in blocks { block.keyPadding = padding }
        }
        let logits = network.forward(inputView, mode: mode)
        return logits.shape.count == 2
            ? logits : logits.reshaped([logits.count / classes, classes])
    }

    /// Back-propagates `dL/d logits` from the last training-mode `forward`, accumulating parameter
    /// gradients.
    public func backward(_ logitsGradient: Tensor) {
        _ = network.backward(logitsGradient)
    }

    /// Sets every parameter's gradient to zero (lazily: no memory is written).
    public func zeroGradients() {
        for p in parameters { p.zeroGradient() }
    }

    /// A model of the same layers whose parameters share this model's values (the same storage:
    /// an update to one is an update to both) and keep gradients and activations of their own, so
    /// that the two can run passes on different examples at once (`TrainingStep` splits a batch
    /// so). Its dropout layers draw from generators of their own, all seeded alike: give them
    /// generators split off this model's before a training pass (`TrainingStep` does at each step).
    public func replica() -> Model {
        var generator = SeededGenerator(seed: 0)
        let network: Sequential
        let copy: Model
        do {
            // Built with zero weights, nothing drawn: the values are replaced by this model's.
            network = Sequential(
                try Initialization.$drawsWeights.withValue(false) {
                    try LayerDescriptor.layers(
                        self.network.layers.map(\.descriptor), generator: &generator)
                },
                channelMajor: self.network.layouts.contains { $0 != .nchw })
            copy = try Model(
                network: network, inputShape: inputShape, classes: classes,
                normalization: normalization, architecture: architecture, metadata: metadata)
        } catch {
            preconditionFailure("a model's own layers rebuild: \(error)")
        }
        let (mine, theirs) = (parameters, copy.parameters)
        precondition(
            mine.count == theirs.count, "replica: \(theirs.count) parameters, \(mine.count)")
        for (p, q) in zip(mine, theirs) {
            precondition(p.value.shape == q.value.shape, "replica: parameter \(p.name)")
            q.value = p.value
        }
        return copy
    }

    /// Inference-mode logits in a new tensor the caller owns (the only allocation per call once
    /// the batch size has been seen).
    public func logits(_ batch: Tensor) -> Tensor {
        forward(batch, mode: .inference).copy()
    }
}
