import DistillCore

/// A pre-LayerNorm transformer block (GPT-2's, nanoGPT's `Block`):
///
///     x = x + attn(ln_1(x))
///     x = x + mlp(ln_2(x)),   mlp = c_proj(gelu(c_fc(.)))
///
/// Shapes: input and output `[B, T, C]`; the MLP's hidden width is `mlp` (4C by default). The
/// parameters are named as its parts: `ln_1.weight`, `attn.in_proj_weight`, ..., `mlp.c_fc.weight`,
/// `mlp.c_proj.bias`. Backward runs the same path in reverse; each residual passes its gradient
/// straight through and adds its branch's. No dropout.
public final class TransformerBlock: Layer {
    public let dimension: Int
    public let mlpDimension: Int
    public let norm1: LayerNorm
    public let attention: SelfAttention
    public let norm2: LayerNorm
    public let expand: Linear
    public let activation: GELU
    public let project: Linear
    public var computesInputGradient = true
    private var middle = Tensor(zeros: [0])  // [B, T, C]: x + attn(ln_1(x))
    private var output = Tensor(zeros: [0])  // [B, T, C]
    private var middleGradient = Tensor(zeros: [0])  // [B, T, C]
    private var inputGradient = Tensor(zeros: [0])  // [B, T, C]

    /// - Parameter mlp: the MLP's hidden width, 4 `dimension` when nil.
    public init(
        dimension: Int, heads: Int, mlp: Int? = nil, causal: Bool, generator: inout SeededGenerator
    ) {
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
    }

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
        "block:\(dimension):\(attention.heads):\(mlpDimension)\(attention.causal ? ":causal" : "")"
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try attention.outputShape(for: inputShape)
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        middle.resize(to: input.shape)
        output.resize(to: input.shape)
        let attended = attention.forward(norm1.forward(input, mode: mode), mode: mode)
        add(input, attended, into: middle)
        let transformed = project.forward(
            activation.forward(
                expand.forward(norm2.forward(middle, mode: mode), mode: mode), mode: mode),
            mode: mode)
        add(middle, transformed, into: output)
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        // d middle = dout + (the MLP branch's gradient at its input).
        let branch2 = norm2.backward(
            expand.backward(activation.backward(project.backward(outputGradient))))
        middleGradient.resize(to: outputGradient.shape)
        add(outputGradient, branch2, into: middleGradient)
        norm1.computesInputGradient = true
        let branch1 = norm1.backward(attention.backward(middleGradient))
        guard computesInputGradient else { return inputGradient }
        inputGradient.resize(to: outputGradient.shape)
        add(middleGradient, branch1, into: inputGradient)
        return inputGradient
    }

    /// `out = a + b`, element by element.
    private func add(_ a: Tensor, _ b: Tensor, into out: Tensor) {
        let (x, y, z) = (a.pointer, b.pointer, out.pointer)
        for i in 0..<out.count { z[i] = x[i] + y[i] }
    }
}
