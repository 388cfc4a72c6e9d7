import DistillCore
import DistillFormats
import DistillTestSupport
import XCTest

@testable import DistillNN

/// A protobuf message read back field by field (the test's own reader, independent of the writer).
struct WireMessage {
    var varints: [Int: [UInt64]] = [:]
    var bytes: [Int: [[UInt8]]] = [:]

    init(_ data: [UInt8]) throws {
        var i = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < data.count else { throw NSError(domain: "wire", code: 1) }
                let b = data[i]
                i += 1
                value |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return value }
                shift += 7
            }
        }
        while i < data.count {
            let key = try varint()
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: varints[field, default: []].append(try varint())
            case 2:
                let n = Int(try varint())
                guard i + n <= data.count else { throw NSError(domain: "wire", code: 2) }
                bytes[field, default: []].append(Array(data[i..<(i + n)]))
                i += n
            case 5: i += 4
            default: throw NSError(domain: "wire", code: 3)
            }
        }
    }

    func string(_ field: Int) -> String? {
        bytes[field]?.first.map { String(decoding: $0, as: UTF8.self) }
    }
    func messages(_ field: Int) throws -> [WireMessage] {
        try (bytes[field] ?? []).map(WireMessage.init)
    }
}

final class ONNXExportTests: XCTestCase {
    /// The graph of a CNN: normalisation, then one node per layer (dropout left out), the logits
    /// and their softmax; every weight an initializer holding our values, little-endian.
    func testCNNGraphHoldsEveryLayerAndWeight() throws {
        var generator = SeededGenerator(seed: 3)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "cnn:4/fc:8"), inputShape: [1, 6, 6], classes: 3,
            dropout: 0.2,
            normalization: InputNormalization(divisor: 255, mean: 0.5, std: 0.25),
            generator: &generator)
        let onnx = try WireMessage(model.onnx())
        XCTAssertEqual(onnx.varints[1], [8])  // ir_version
        let opset = try XCTUnwrap(try onnx.messages(8).first)
        XCTAssertEqual(opset.varints[2], [17])
        let graph = try XCTUnwrap(try onnx.messages(7).first)
        let nodes = try graph.messages(1)
        XCTAssertEqual(
            nodes.compactMap { $0.string(4) },
            [
                "Div", "Sub", "Div", "Conv", "MaxPool", "Relu", "Flatten", "Gemm", "Relu", "Gemm",
                "Identity", "Softmax",
            ])
        // Each node reads the previous one's output.
        for (previous, node) in zip(nodes, nodes.dropFirst()) where node.string(4) != "Softmax" {
            XCTAssertEqual(node.string(1), previous.string(2))
        }
        XCTAssertEqual(nodes.first?.string(1), "input")
        XCTAssertEqual(nodes.last?.string(2), "probabilities")
        let initializers = try graph.messages(5)
        let named = Dictionary(uniqueKeysWithValues: initializers.map { ($0.string(8)!, $0) })
        for (name, parameter) in model.network.namedParameters {
            let tensor = try XCTUnwrap(named[name], name)
            XCTAssertEqual(tensor.varints[1]?.map(Int.init), parameter.value.shape, name)
            let raw = try XCTUnwrap(tensor.bytes[9]?.first)
            let values = stride(from: 0, to: raw.count, by: 4).map { i in
                Float(
                    bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16
                        | UInt32(raw[i + 3]) << 24)
            }
            XCTAssertEqual(values, Array(parameter.value.buffer), name)
        }
        // + divisor, mean, std
        XCTAssertEqual(initializers.count, model.network.namedParameters.count + 3)
        XCTAssertEqual(try graph.messages(11).first?.string(1), "input")
        XCTAssertEqual(
            try graph.messages(12).compactMap { $0.string(1) }, ["logits", "probabilities"])
    }
}

extension ONNXExportTests {
    /// A transformer's graph: the embedding lookup, per block two LayerNormalizations, the three
    /// projections, a causal mask of -1e30 above the diagonal and the softmax, the GELU's Erf;
    /// the query weight is the first D rows of in_proj_weight, transposed for MatMul.
    func testTransformerGraph() throws {
        var generator = SeededGenerator(seed: 4)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "transformer:layers=2,dim=6,heads=2,context=5"),
            inputShape: [5], classes: 256, generator: &generator)
        let graph = try XCTUnwrap(try WireMessage(model.onnx()).messages(7).first)
        let ops = try graph.messages(1).compactMap { $0.string(4) }
        XCTAssertEqual(ops.prefix(3), ["Cast", "Gather", "Add"])
        XCTAssertEqual(ops.filter { $0 == "LayerNormalization" }.count, 2 * 2 + 1)
        XCTAssertEqual(ops.filter { $0 == "Erf" }.count, 2)
        XCTAssertEqual(ops.filter { $0 == "Softmax" }.count, 2 + 1)
        XCTAssertEqual(ops.suffix(2), ["Identity", "Softmax"])
        func floats(_ name: String) throws -> [Float] {
            let tensor = try XCTUnwrap(try graph.messages(5).first { $0.string(8) == name }, name)
            let raw = try XCTUnwrap(tensor.bytes[9]?.first)
            return stride(from: 0, to: raw.count, by: 4).map { i in
                Float(
                    bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16
                        | UInt32(raw[i + 3]) << 24)
            }
        }
        let block = try XCTUnwrap(model.network.layers[2] as? TransformerBlock)
        let q = try floats("blocks.0.attn.q.weight")  // [in, out]
        for r in 0..<6 {
            for k in 0..<6 {
                XCTAssertEqual(q[k * 6 + r], block.attention.inWeight.value[r * 6 + k])
            }
        }
        let mask = try floats("blocks.0.attn.causal_mask")
        for i in 0..<5 {
            for j in 0..<5 { XCTAssertEqual(mask[i * 5 + j], j > i ? -1e30 : 0) }
        }
        XCTAssertEqual(
            try graph.messages(12).compactMap { $0.string(1) }, ["logits", "probabilities"])
    }
}

final class TorchImportTests: XCTestCase {
    func write(_ tensors: [(String, [Int])], to path: String, seed: UInt64 = 1) throws -> [String:
        [Float]]
    {
        var values: [String: [Float]] = [:]
        let inputs = tensors.enumerated().map { i, t in
            let v = fixtureValues(t.1.reduce(1, *), seed: seed + UInt64(i))
            values[t.0] = v
            return SafeTensors.Input(name: t.0, shape: t.1, values: Tensor(shape: t.1, values: v))
        }
        try SafeTensors.write(inputs, metadata: [:], to: path)
        return values
    }

    /// Modules named net.0, net.2, net.10 are taken in that order (not as strings sort them).
    func testStateDictLayersInModuleOrder() throws {
        let dir = try makeTemporaryDirectory("distill-torch")
        let values = try write(
            [
                ("net.10.bias", [3]), ("net.10.weight", [3, 6]), ("net.0.weight", [5, 4]),
                ("net.0.bias", [5]),
                ("net.2.weight", [6, 5]), ("net.2.bias", [6]),
            ], to: dir + "/sd.safetensors")
        let model = try TorchImport.model(
            stateDict: dir + "/sd.safetensors", spec: ArchitectureSpec(parsing: "mlp:5,6"),
            inputShape: [4], normalization: .identity)
        XCTAssertEqual(model.classes, 3)
        let named = Dictionary(
            uniqueKeysWithValues: model.network.namedParameters.map {
                ($0.name, Array($0.parameter.value.buffer))
            })
        let dense = model.network.layers.enumerated().filter { $0.element is Linear }.map(\.offset)
        XCTAssertEqual(named["layers.\(dense[0]).weight"], values["net.0.weight"])
        XCTAssertEqual(named["layers.\(dense[1]).bias"], values["net.2.bias"])
        XCTAssertEqual(named["layers.\(dense[2]).weight"], values["net.10.weight"])
    }

    /// A transformer's state dict in the layout of scripts/pytorch_transformer_step.py and in
    /// nanoGPT's: every tensor lands in its layer (a longer position table is cut to the context,
    /// a causal-mask buffer is ignored, a head without bias keeps a zero one), and a missing or
    /// misshapen tensor is named.
    func testTransformerStateDictByName() throws {
        let dir = try makeTemporaryDirectory("distill-torch")
        let spec = try ArchitectureSpec(parsing: "transformer:layers=2,dim=8,heads=2,context=4")
        func block(_ p: String, _ fc: String, _ proj: String) -> [(String, [Int])] {
            [
                (p + "ln_1.weight", [8]), (p + "ln_1.bias", [8]),
                (p + "attn.in_proj_weight", [24, 8]), (p + "attn.in_proj_bias", [24]),
                (p + "attn.out_proj.weight", [8, 8]), (p + "attn.out_proj.bias", [8]),
                (p + "ln_2.weight", [8]), (p + "ln_2.bias", [8]),
                (p + fc + "weight", [32, 8]), (p + fc + "bias", [32]),
                (p + proj + "weight", [8, 32]), (p + proj + "bias", [8]),
            ]
        }
        let reference =
            [("tokens.weight", [256, 8]), ("positions.weight", [4, 8]), ("mask", [4, 4])]
            + block("blocks.0.", "mlp.0.", "mlp.2.") + block("blocks.1.", "mlp.0.", "mlp.2.")
            + [
                ("ln.weight", [8]), ("ln.bias", [8]), ("head.weight", [256, 8]),
                ("head.bias", [256]),
            ]
        let nano =
            [("transformer.wte.weight", [256, 8]), ("transformer.wpe.weight", [16, 8])]
            + block("transformer.h.0.", "mlp.c_fc.", "mlp.c_proj.")
            + block("transformer.h.1.", "mlp.c_fc.", "mlp.c_proj.")
            + [
                ("transformer.ln_f.weight", [8]), ("transformer.ln_f.bias", [8]),
                ("lm_head.weight", [256, 8]),
            ]
        for (tensors, names) in [
            (
                reference,
                [
                    "tokens.weight", "positions.weight", "blocks.1.attn.in_proj_weight",
                    "mlp.2.bias", "head.bias",
                ]
            ),
            (
                nano,
                [
                    "transformer.wte.weight", "transformer.wpe.weight",
                    "transformer.h.1.attn.in_proj_weight", "mlp.c_proj.bias", nil,
                ]
            ),
        ] as [([(String, [Int])], [String?])] {
            let values = try write(tensors, to: dir + "/lm.safetensors")
            let model = try TorchImport.model(
                stateDict: dir + "/lm.safetensors", spec: spec, inputShape: [1, 28, 28],
                normalization: .identity)
            XCTAssertEqual(model.classes, 256)
            let layers = model.network.layers
            let (embedding, positions) = (
                try XCTUnwrap(layers[0] as? Embedding),
                try XCTUnwrap(layers[1] as? PositionEmbedding)
            )
            let (second, head) = (
                try XCTUnwrap(layers[3] as? TransformerBlock), try XCTUnwrap(layers.last as? Linear)
            )
            XCTAssertEqual(embedding.weight.value.values, values[names[0]!])
            XCTAssertEqual(positions.weight.value.values, Array(values[names[1]!]!.prefix(32)))
            XCTAssertEqual(second.attention.inWeight.value.values, values[names[2]!])
            XCTAssertEqual(
                second.project.bias.value.values,
                values[values.keys.first { $0.contains(".1.") && $0.hasSuffix(names[3]!) }!])
            XCTAssertEqual(
                head.bias.value.values,
                names[4].map { values[$0]! } ?? [Float](repeating: 0, count: 256))
        }
        _ = try write(
            reference.filter { $0.0 != "blocks.1.ln_2.bias" }, to: dir + "/missing.safetensors")
        XCTAssertThrowsError(
            try TorchImport.model(
                stateDict: dir + "/missing.safetensors", spec: spec, inputShape: [4],
                normalization: .identity)
        ) { XCTAssertTrue("\($0)".contains("blocks.1.ln_2.bias"), "\($0)") }
        _ = try write(
            reference.map { $0.0 == "blocks.0.attn.in_proj_weight" ? ($0.0, [8, 24]) : $0 },
            to: dir + "/shape.safetensors")
        XCTAssertThrowsError(
            try TorchImport.model(
                stateDict: dir + "/shape.safetensors", spec: spec, inputShape: [4],
                normalization: .identity)
        ) {
            XCTAssertTrue(
                "\($0)".contains("blocks.0.attn.in_proj_weight has shape [8, 24]"), "\($0)")
        }
    }

    func testMismatchesAreNamed() throws {
        let dir = try makeTemporaryDirectory("distill-torch")
        _ = try write(
            [("0.weight", [5, 4]), ("0.bias", [5]), ("2.weight", [3, 6]), ("2.bias", [3])],
            to: dir + "/a.safetensors")
        XCTAssertThrowsError(
            try TorchImport.model(
                stateDict: dir + "/a.safetensors", spec: ArchitectureSpec(parsing: "mlp:5"),
                inputShape: [4], normalization: .identity)
        ) {
            XCTAssertTrue(
                "\($0)".contains("2.weight has shape [3, 6]") && "\($0)".contains("a.safetensors"),
                "\($0)")
        }
        XCTAssertThrowsError(
            try TorchImport.model(
                stateDict: dir + "/a.safetensors", spec: ArchitectureSpec(parsing: "mlp:5,5"),
                inputShape: [4], normalization: .identity)
        ) {
            XCTAssertTrue("\($0)".contains("holds 2 layers"), "\($0)")
        }
        _ = try write(
            [("0.weight", [5, 4]), ("0.bias", [5]), ("1.running_mean", [5])],
            to: dir + "/b.safetensors")
        XCTAssertThrowsError(
            try TorchImport.model(
                stateDict: dir + "/b.safetensors", spec: ArchitectureSpec(parsing: "mlp"),
                inputShape: [4], normalization: .identity)
        ) {
            XCTAssertTrue("\($0)".contains("1.running_mean"), "\($0)")
        }
        // An architecture too large for memory is refused before its weights are allocated.
        XCTAssertThrowsError(
            try TorchImport.model(
                stateDict: dir + "/a.safetensors",
                spec: ArchitectureSpec(parsing: "mlp:1000000,1000000"),
                inputShape: [4], normalization: .identity)
        ) {
            XCTAssertTrue(
                "\($0)".contains(
                    "mlp:1000000,1000000 on input [4] need 4.0 TB for 1000009000003 weights"),
                "\($0)")
        }
    }
}
