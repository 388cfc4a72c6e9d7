import DistillCore

/// A pre-LayerNorm transformer block (GPT-2's, nanoGPT's `Block`):
///
///     x = x + attn(ln_1(x))
///     x = x + mlp(ln_2(x)),   mlp = c_proj(gelu(c_fc(.)))
///
/// Shapes: input and output `[B, T, C]`; the MLP's hidden width is `mlp` (4C by default). The
/// parameters are named as its parts: `ln_1.weight`, `attn.in_proj_weight`, ..., `mlp.c_fc.weight`,
/// `mlp.c_proj.bias`. Backward runs the same path in reverse; each residual passes its gradient
/// straight through and adds its branch's (the LayerNorm that starts the branch adds it to its
/// own input gradient, in the same pass: `LayerNorm.backward(_:adding:)`). With `dropout` p > 0
/// it is where PyTorch's `nn.TransformerEncoderLayer` has it: on the attention's output, on the
/// MLP's hidden activations and on the MLP's output, each before its residual sum (training mode
/// only).
/// Where no dropout applies (none, or inference mode) each residual sum is made by its branch's
/// last product, which adds the residual as it lays its bias down
/// (`Linear.forward(_:mode:adding:)`): no pass of its own.
public final class TransformerBlock: Layer {
    public let dimension: Int
    public let mlpDimension: Int
    public let norm1: LayerNorm
    public let attention: SelfAttention
    public let norm2: LayerNorm
    public let expand: Linear
    public let activation: GELU
    public let project: Linear
    /// The dropout layers (attention output, MLP hidden, MLP output); empty without dropout.
    public let dropouts: [Dropout]
    public var computesInputGradient = true
    // Training with dropout: x + attn(ln_1(x)) and the output, [B, T, C]. Otherwise the
    // attention's and the MLP projection's outputs are the residual sums.
    private var middle = Tensor(zeros: [0])
    private var output = Tensor(zeros: [0])

    /// - Parameters:
    ///   - mlp: the MLP's hidden width, 4 `dimension` when nil.
    ///   - dropout: the dropout probability, in [0, 1).
    public init(
        dimension: Int, heads: Int, mlp: Int? = nil, causal: Bool, dropout: Float = 0,
        generator: inout SeededGenerator
    ) {
        precondition(dropout >= 0 && dropout < 1)
        self.dimension = dimension
        self.mlpDimension = mlp ?? 4 * dimension
        norm1 = LayerNorm(dimension: dimension)
        attention = SelfAttention(
            dimension: dimension, heads: heads, causal: causal, generator: &generator)
        norm2 = LayerNorm(dimension: dimension)
        expand = Linear(
            inputSize: dimension, outputSize: mlpDimension, initialization: .glorot,
            generator: &generator)
        activation = GELU()
        project = Linear(
            inputSize: mlpDimension, outputSize: dimension, initialization: .glorot,
            generator: &generator)
        dropouts =
            dropout > 0
            ? (0..<3).map { _ in Dropout(probability: dropout, generator: generator.split()) } : []
    }

    public var dropoutLayers: [Dropout] { dropouts }

    /// The key padding of the next forward pass (see `SelfAttention.keyPadding`).
    public var keyPadding: [Bool]? {
        get { attention.keyPadding }
        set { attention.keyPadding = newValue }
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        let parts: [(String, any Layer)] = [
            ("ln_1", norm1), ("attn", attention), ("ln_2", norm2), ("mlp.c_fc", expand),
            ("mlp.c_proj", project),
        ]
        return parts.flatMap { prefix, layer in
            layer.namedParameters.map { ("\(prefix).\($0.name)", $0.parameter) }
        }
    }

    public var parameters: [Parameter] { namedParameters.map(\.parameter) }

    public var descriptor: String {
        "block:\(dimension):\(attention.heads):\(mlpDimension)"
            + (dropouts.first.map { ":d\($0.probability)" } ?? "")
            + (attention.causal ? ":causal" : "")
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try attention.outputShape(for: inputShape)
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        guard !dropouts.isEmpty && mode == .training else {
            // No dropout to apply: each branch's last product adds the residual as it lays its
            // bias down.
            let middle = attention.forward(
                norm1.forward(input, mode: mode), mode: mode, adding: input)
            let hidden = activation.forward(
                expand.forward(norm2.forward(middle, mode: mode), mode: mode), mode: mode)
            return project.forward(hidden, mode: mode, adding: middle)
        }
        middle.resize(to: input.shape)
        output.resize(to: input.shape)
        func drop(_ x: Tensor, _ i: Int) -> Tensor { dropouts[i].forward(x, mode: mode) }
        let attended = drop(attention.forward(norm1.forward(input, mode: mode), mode: mode), 0)
        add(input, attended, into: middle)
        let hidden = drop(
            activation.forward(
                expand.forward(norm2.forward(middle, mode: mode), mode: mode), mode: mode), 1)
        let transformed = drop(project.forward(hidden, mode: mode), 2)
        add(middle, transformed, into: output)
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        // d middle = dout + (the MLP branch's gradient at its input).
        func undrop(_ g: Tensor, _ i: Int) -> Tensor {
            dropouts.isEmpty ? g : dropouts[i].backward(g)
        }
        // Each LayerNorm adds the residual's gradient to its own input gradient.
        let middleGradient = norm2.backward(
            expand.backward(
                activation.backward(undrop(project.backward(undrop(outputGradient, 2)), 1))),
            adding: outputGradient)
        norm1.computesInputGradient = computesInputGradient
        return norm1.backward(
            attention.backward(undrop(middleGradient, 0)), adding: middleGradient)
    }

    /// `out = a + b`, element by element.
    private func add(_ a: Tensor, _ b: Tensor, into out: Tensor) {
        elementwise(out.count, Sum(a: a.pointer, b: b.pointer, out: out.pointer))
    }
}

/// `out = a + b`.
private struct Sum: ElementwiseKernel {
    let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>,
        out: UnsafeMutablePointer<Float>

    @inline(__always) func eight(at i: Int) { store8(load8(a + i) + load8(b + i), out + i) }
    @inline(__always) func one(at i: Int) { out[i] = a[i] + b[i] }
}
