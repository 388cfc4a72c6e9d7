import DistillCore

/// The sum of several embeddings per position, one per feature slot, from one shared table (as
/// PyTorch's `nn.EmbeddingBag(mode="sum", padding_idx=0)` over each position's ids): how a tagger
/// embeds a word from its feature ids (`WordFeatures`).
///
/// Shapes: input `[B, T, slots]` feature ids (stored as Float, whole numbers in
/// `0..<vocabulary`), weight `[vocabulary, dimension]` (named `weight`), output `[B, T,
/// dimension]` with `out[b, t] = sum_s weight[id[b, t, s]]` over the ids that are not 0. Id 0 is
/// padding: it adds nothing and its row gets no gradient, so a position whose ids are all 0 (a
/// padded position) embeds to the zero vector. Backward: `dweight[id] += dout[b, t]` for each
/// nonzero id. The ids get no gradient.
public final class FeatureEmbedding: Layer {
    public let vocabulary: Int
    public let slots: Int
    public let dimension: Int
    public let weight: Parameter
    /// The ids have no gradient; setting it changes nothing.
    public var computesInputGradient: Bool {
        get { false }
        set {}
    }
    private var ids = Tensor(zeros: [0])  // [B, T, slots], the last training forward pass's input
    private var output = Tensor(zeros: [0])  // [B, T, C]
    private let noGradient = Tensor(zeros: [0])

    /// Weights drawn from N(0, 0.1^2): a table mostly of rows no word reaches stays near zero.
    public init(vocabulary: Int, slots: Int, dimension: Int, generator: inout SeededGenerator) {
        precondition(vocabulary >= 2 && slots >= 1 && dimension >= 1)
        (self.vocabulary, self.slots, self.dimension) = (vocabulary, slots, dimension)
        let w = Tensor(zeros: [vocabulary, dimension])
        Initialization.fillNormal(w, scale: 0.1, generator: &generator)
        weight = Parameter(name: "weight", value: w, isWeight: true)
    }

    public var parameters: [Parameter] { [weight] }
    public var descriptor: String { "features:\(vocabulary):\(slots):\(dimension)" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, inputShape[2] == slots else {
            throw ArchitectureError(
                "\(descriptor) expects feature ids [B, T, \(slots)], got \(inputShape)")
        }
        return [inputShape[0], inputShape[1], dimension]
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        let positions = input.count / slots
        output.resize(to: Array(input.shape.dropLast()) + [dimension])
        output.fill(0)
        if mode == .training { ids = input }
        let c = dimension
        for p in 0..<positions {
            let y = output.pointer + p * c
            for s in 0..<slots {
                let id = row(of: input[p * slots + s])
                guard id != 0 else { continue }
                let w = weight.value.pointer + id * c
                for j in 0..<c { y[j] += w[j] }
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let gradient = weight.startAccumulating()
        let c = dimension
        for p in 0..<(ids.count / slots) {
            let dy = outputGradient.pointer + p * c
            for s in 0..<slots {
                let id = row(of: ids[p * slots + s])
                guard id != 0 else { continue }
                let target = gradient.pointer + id * c
                for j in 0..<c { target[j] += dy[j] }
            }
        }
        return noGradient
    }

    /// Which positions of `input` (`[B, T, slots]`) are padding (every id 0), `[B T]`; nil when
    /// none is.
    public func padding(of input: Tensor) -> [Bool]? {
        let positions = input.count / slots
        var flags = [Bool](repeating: false, count: positions)
        var any = false
        for p in 0..<positions {
            var all = true
            for s in 0..<slots where input[p * slots + s] != 0 {
                all = false
                break
            }
            flags[p] = all
            any = any || all
        }
        return any ? flags : nil
    }

    /// The table row of a feature id, checked.
    @inline(__always) private func row(of id: Float) -> Int {
        let row = Int(id)
        precondition(
            Float(row) == id && row >= 0 && row < vocabulary,
            "feature id \(id) outside 0..<\(vocabulary)")
        return row
    }
}
