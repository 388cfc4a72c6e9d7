import DistillCore

/// A lookup table from token ids to vectors, as PyTorch's `nn.Embedding`.
///
/// Shapes: input `[B, T]` token ids (stored as Float, whole numbers in `0..<vocabulary`), weight
/// `[vocabulary, dimension]` (named `weight`), output `[B, T, dimension]` with
/// `out[b, t] = weight[id[b, t]]`. Backward: `dweight[id[b, t]] += dout[b, t]`, a scatter that
/// reads and writes only the rows of the ids in the batch (the first accumulation of a step first
/// scales the whole table by its `beta`: a fill when the gradient is logically zero). The ids get no gradient.
public final class Embedding: Layer {
    public let vocabulary: Int
    public let dimension: Int
    public let weight: Parameter
    /// The ids have no gradient; setting it changes nothing.
    public var computesInputGradient: Bool {
        get { false }
        set {}
    }
    private var ids = Tensor(zeros: [0])  // [B, T], the last training forward pass's input
    private var output = Tensor(zeros: [0])  // [B, T, C]
    private let noGradient = Tensor(zeros: [0])

    /// Weights drawn from N(0, 1), as PyTorch's default.
    public init(vocabulary: Int, dimension: Int, generator: inout SeededGenerator) {
        precondition(vocabulary >= 1 && dimension >= 1)
        self.vocabulary = vocabulary
        self.dimension = dimension
        let w = Tensor(zeros: [vocabulary, dimension])
        Initialization.fillNormal(w, scale: 1, generator: &generator)
        weight = Parameter(name: "weight", value: w, isWeight: true)
    }

    public var parameters: [Parameter] { [weight] }
    public var descriptor: String { "embedding:\(vocabulary):\(dimension)" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 2 else {
            throw ArchitectureError("\(descriptor) expects token ids [B, T], got \(inputShape)")
        }
        return inputShape + [dimension]
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        output.resize(to: input.shape + [dimension])
        if mode == .training { ids = input }
        let c = dimension
        for i in 0..<input.count {
            let id = row(of: input[i])
            (output.pointer + i * c).update(from: weight.value.pointer + id * c, count: c)
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let gradient = weight.startAccumulating()
        let c = dimension
        for i in 0..<ids.count {
            let target = gradient.pointer + row(of: ids[i]) * c
            let dy = outputGradient.pointer + i * c
            for j in 0..<c { target[j] += dy[j] }
        }
        return noGradient
    }

    /// The table row of a token id, checked.
    @inline(__always) private func row(of id: Float) -> Int {
        let row = Int(id)
        precondition(
            Float(row) == id && row >= 0 && row < vocabulary,
            "token id \(id) outside 0..<\(vocabulary)")
        return row
    }
}

/// Learned position embeddings, added to a sequence of vectors: `out[b, t] = x[b, t] + weight[t]`
/// (as GPT-2's `wpe`, an `nn.Embedding` over positions).
///
/// Shapes: input and output `[B, T, dimension]` with `T <= context`, weight `[context,
/// dimension]` (named `weight`, drawn from N(0, 0.02^2) as GPT-2's). Backward: `dx = dout`,
/// `dweight[t] += sum_b dout[b, t]`.
public final class PositionEmbedding: Layer {
    public let context: Int
    public let dimension: Int
    public let weight: Parameter
    public var computesInputGradient = true
    private var output = Tensor(zeros: [0])

    public init(context: Int, dimension: Int, generator: inout SeededGenerator) {
        precondition(context >= 1 && dimension >= 1)
        self.context = context
        self.dimension = dimension
        let w = Tensor(zeros: [context, dimension])
        Initialization.fillNormal(w, scale: 0.02, generator: &generator)
        weight = Parameter(name: "weight", value: w, isWeight: true)
    }

    public var parameters: [Parameter] { [weight] }
    public var descriptor: String { "position:\(context):\(dimension)" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, inputShape[2] == dimension, inputShape[1] <= context else {
            throw ArchitectureError(
                "\(descriptor) expects [B, T, \(dimension)] with T <= \(context), got \(inputShape)"
            )
        }
        return inputShape
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        let (b, t, c) = (input.shape[0], input.shape[1], input.shape[2])
        precondition(c == dimension && t <= context, "\(descriptor): input \(input.shape)")
        output.resize(to: input.shape)
        for n in 0..<b {
            for p in 0..<t {
                let x = input.pointer + (n * t + p) * c
                let y = output.pointer + (n * t + p) * c
                let w = weight.value.pointer + p * c
                for j in 0..<c { y[j] = x[j] + w[j] }
            }
        }
        return output
    }

    /// The output gradient is the input's (returned as it is).
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let (b, t, c) = (outputGradient.shape[0], outputGradient.shape[1], outputGradient.shape[2])
        let gradient = weight.startAccumulating()
        for n in 0..<b {
            for p in 0..<t {
                let dy = outputGradient.pointer + (n * t + p) * c
                let g = gradient.pointer + p * c
                for j in 0..<c { g[j] += dy[j] }
            }
        }
        return outputGradient
    }
}
