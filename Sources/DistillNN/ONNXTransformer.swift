import DistillCore
import DistillFormats

/// A directed graph of ONNX nodes under construction: each node's output gets a fresh name.
struct ONNXGraph {
    var nodes: [ProtobufWriter] = []
    var initializers: [ProtobufWriter] = []
    private var counter = 0

    /// Adds `op` on `inputs`; returns its output's name.
    mutating func node(_ op: String, _ inputs: [String], _ attributes: [ONNX.Attribute] = [])
        -> String
    {
        counter += 1
        let output = "\(op.lowercased())_\(counter)"
        nodes.append(
            ONNX.node(
                op, inputs: inputs, outputs: [output], name: "\(op)_\(counter)",
                attributes: attributes))
        return output
    }

    /// A float32 initializer named `name`.
    mutating func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> String {
        initializers.append(
            values.withUnsafeBufferPointer { ONNX.tensor(name, dims: dims, values: $0) })
        return name
    }

    /// An int64 initializer (shapes for `Reshape`).
    mutating func int64(_ name: String, _ values: [Int]) -> String {
        initializers.append(ONNX.int64Tensor(name, values: values))
        return name
    }

    /// `x W^T + b` for a `[out, in]` weight, stored transposed (`[in, out]`) for `MatMul`.
    mutating func linear(_ x: String, _ layer: Linear, _ name: String) -> String {
        let (rows, columns) = (layer.outputSize, layer.inputSize)
        let w = layer.weight.value
        var transposed = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { transposed[c * rows + r] = w[r * columns + c] } }
        let weight = tensor("\(name).weight", [columns, rows], transposed)
        let bias = tensor("\(name).bias", [rows], layer.bias.value.values)
        return node("Add", [node("MatMul", [x, weight]), bias])
    }

    mutating func layerNorm(_ x: String, _ norm: LayerNorm, _ name: String) -> String {
        node(
            "LayerNormalization",
            [
                x, tensor("\(name).weight", [norm.dimension], norm.weight.value.values),
                tensor("\(name).bias", [norm.dimension], norm.bias.value.values),
            ], [.int("axis", -1), .float("epsilon", norm.epsilon)])
    }
}

extension Model {
    /// Whether the network is a transformer language model (token and position embeddings,
    /// blocks, a final LayerNorm and a head), which `onnx()` writes with `transformerONNX`.
    public var isTransformer: Bool { network.layers.first is Embedding }

    /// The transformer as an ONNX graph (opset 17): input `input` float32 `[batch, context]` of
    /// token ids (bytes 0...255), outputs `logits` `[batch, context, classes]` (position `i`'s
    /// prediction of the token after it) and `probabilities`, their softmax at T = 1.
    ///
    /// `Cast` and `Gather` embed the ids, the position table is added, and each block is
    /// `LayerNormalization`, the attention (query, key and value projections as `MatMul` with the
    /// rows of `in_proj_weight` transposed; heads through `Reshape` and `Transpose`; scores
    /// scaled by `1 / sqrt(head size)`, a causal mask of -1e30 added above the diagonal, `Softmax`
    /// over the keys), the output projection, and the GELU MLP (`Erf`, or `Tanh` for the tanh
    /// form), each in its residual. Dropout is the identity at inference and is left out.
    func transformerONNX(name: String) -> [UInt8] {
        var g = ONNXGraph()
        let context = inputShape[0]
        var x = "input"
        var blockIndex = 0
        for layer in network.layers {
            switch layer {
            case let embedding as Embedding:
                let ids = g.node("Cast", [x], [.int("to", 7)])  // INT64
                let table = g.tensor(
                    "tok.weight", [embedding.vocabulary, embedding.dimension],
                    embedding.weight.value.values)
                x = g.node("Gather", [table, ids], [.int("axis", 0)])
            case let positions as PositionEmbedding:
                let rows = Array(
                    positions.weight.value.values.prefix(context * positions.dimension))
                x = g.node(
                    "Add", [x, g.tensor("pos.weight", [context, positions.dimension], rows)])
            case let block as TransformerBlock:
                x = transformerBlock(&g, x, block, "blocks.\(blockIndex)", context: context)
                blockIndex += 1
            case let norm as LayerNorm:
                x = g.layerNorm(x, norm, "ln_f")
            case let head as Linear:
                x = g.linear(x, head, "head")
            case is Dropout:
                continue
            default:
                preconditionFailure("no ONNX form for layer \(layer.descriptor)")
            }
        }
        g.nodes.append(ONNX.node("Identity", inputs: [x], outputs: ["logits"], name: "logits"))
        g.nodes.append(
            ONNX.node(
                "Softmax", inputs: ["logits"], outputs: ["probabilities"], name: "probabilities",
                attributes: [.int("axis", -1)]))
        return ONNX.model(
            name: name, nodes: g.nodes, initializers: g.initializers,
            inputs: [ONNX.valueInfo("input", dims: [nil, context])],
            outputs: [
                ONNX.valueInfo("logits", dims: [nil, context, classes]),
                ONNX.valueInfo("probabilities", dims: [nil, context, classes]),
            ],
            producer: "distill")
    }

    private func transformerBlock(
        _ g: inout ONNXGraph, _ input: String, _ block: TransformerBlock, _ name: String,
        context t: Int
    ) -> String {
        let attention = block.attention
        let (c, heads) = (attention.dimension, attention.heads)
        let hs = c / heads
        // The query, key and value projections: rows [0, C), [C, 2C), [2C, 3C) of in_proj.
        let h = g.layerNorm(input, block.norm1, "\(name).ln_1")
        let weight = attention.inWeight.value.values
        let bias = attention.inBias.value.values
        func projection(_ part: Int, _ label: String) -> String {
            var transposed = [Float](repeating: 0, count: c * c)
            for r in 0..<c {
                for k in 0..<c { transposed[k * c + r] = weight[(part * c + r) * c + k] }
            }
            let w = g.tensor("\(name).attn.\(label).weight", [c, c], transposed)
            let b = g.tensor(
                "\(name).attn.\(label).bias", [c], Array(bias[(part * c)..<((part + 1) * c)]))
            return g.node("Add", [g.node("MatMul", [h, w]), b])
        }
        let split = g.int64("\(name).attn.heads_shape", [0, 0, heads, hs])
        func splitHeads(_ x: String, _ perm: [Int]) -> String {
            g.node("Transpose", [g.node("Reshape", [x, split])], [.ints("perm", perm)])
        }
        let q = splitHeads(projection(0, "q"), [0, 2, 1, 3])  // [B, H, T, hs]
        let k = splitHeads(projection(1, "k"), [0, 2, 3, 1])  // [B, H, hs, T]
        let v = splitHeads(projection(2, "v"), [0, 2, 1, 3])  // [B, H, T, hs]
        var scores = g.node(
            "Mul",
            [
                g.node("MatMul", [q, k]),
                g.tensor("\(name).attn.scale", [], [1 / Float(hs).squareRoot()]),
            ])
        if attention.causal {
            var mask = [Float](repeating: 0, count: t * t)
            for i in 0..<t { for j in (i + 1)..<t { mask[i * t + j] = -1e30 } }
            scores = g.node("Add", [scores, g.tensor("\(name).attn.causal_mask", [t, t], mask)])
        }
        let weights = g.node("Softmax", [scores], [.int("axis", -1)])
        let merged = g.node(
            "Reshape",
            [
                g.node(
                    "Transpose", [g.node("MatMul", [weights, v])], [.ints("perm", [0, 2, 1, 3])]),
                g.int64("\(name).attn.merged_shape", [0, 0, c]),
            ])
        let outWeight = attention.outWeight.value.values
        var transposed = [Float](repeating: 0, count: c * c)
        for r in 0..<c { for k in 0..<c { transposed[k * c + r] = outWeight[r * c + k] } }
        let attended = g.node(
            "Add",
            [
                g.node(
                    "MatMul",
                    [merged, g.tensor("\(name).attn.out_proj.weight", [c, c], transposed)]),
                g.tensor("\(name).attn.out_proj.bias", [c], attention.outBias.value.values),
            ])
        let middle = g.node("Add", [input, attended])
        let expanded = g.linear(
            g.layerNorm(middle, block.norm2, "\(name).ln_2"), block.expand, "\(name).mlp.c_fc")
        let activated: String
        switch block.activation.approximation {
        case .exact:
            // x (1 + erf(x / sqrt 2)) / 2
            let erf = g.node(
                "Erf",
                [
                    g.node(
                        "Mul",
                        [expanded, g.tensor("\(name).gelu.scale", [], [Float(0.5).squareRoot()])])
                ])
            let one = g.tensor("\(name).gelu.one", [], [1])
            let half = g.tensor("\(name).gelu.half", [], [0.5])
            activated = g.node(
                "Mul", [g.node("Mul", [expanded, half]), g.node("Add", [erf, one])])
        case .tanh:
            // x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2
            let cube = g.node("Mul", [g.node("Mul", [expanded, expanded]), expanded])
            let inner = g.node(
                "Add",
                [
                    expanded,
                    g.node("Mul", [cube, g.tensor("\(name).gelu.cubic", [], [GELU.cubic])]),
                ])
            let tanh = g.node(
                "Tanh",
                [g.node("Mul", [inner, g.tensor("\(name).gelu.scale", [], [GELU.tanhScale])])])
            let one = g.tensor("\(name).gelu.one", [], [1])
            let half = g.tensor("\(name).gelu.half", [], [0.5])
            activated = g.node(
                "Mul", [g.node("Mul", [expanded, half]), g.node("Add", [tanh, one])])
        }
        let projected = g.linear(activated, block.project, "\(name).mlp.c_proj")
        return g.node("Add", [middle, projected])
    }
}
