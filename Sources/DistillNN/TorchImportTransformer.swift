import DistillCore
import DistillFormats

extension TorchImport {
    /// The names a transformer's state dict may give each tensor, first match wins; `{i}` is the
    /// block's index. They cover the layout of `scripts/pytorch_transformer_step.py` (`tokens`,
    /// `positions`, `blocks.{i}.ln_1`, `blocks.{i}.attn` an `nn.MultiheadAttention`,
    /// `blocks.{i}.mlp.0` and `.2` in an `nn.Sequential`, `ln`, `head`) and nanoGPT's names
    /// (`transformer.wte`, `transformer.h.{i}.mlp.c_fc`, `lm_head`, ...), with the attention as
    /// `nn.MultiheadAttention` names it (`in_proj_weight [3D, D]`, `in_proj_bias`, `out_proj`).
    static let transformerNames: [String: [String]] = [
        "tokens": ["tokens.weight", "tok.weight", "wte.weight", "transformer.wte.weight"],
        "positions": ["positions.weight", "pos.weight", "wpe.weight", "transformer.wpe.weight"],
        "block": ["blocks.{i}.", "h.{i}.", "transformer.h.{i}."],
        "ln_1": ["ln_1.", "ln1."],
        "attn": ["attn.", "att."],
        "ln_2": ["ln_2.", "ln2."],
        "c_fc": ["mlp.c_fc.", "mlp.0."],
        "c_proj": ["mlp.c_proj.", "mlp.2."],
        "ln_f": ["ln.", "ln_f.", "transformer.ln_f."],
        "head": ["head.", "lm_head."],
    ]

    /// A transformer of `spec` from a PyTorch state dict with the names of `transformerNames`
    /// (other tensors, such as a registered causal-mask buffer, are ignored; a head without a bias
    /// gets a zero one; a tied head needs no weight of its own). Every shape is
    /// checked; the class count is the token embedding's first dimension.
    /// - Throws: `FileError` naming the file and the first missing or mismatched tensor.
    static func transformer(stateDict path: String, spec: ArchitectureSpec) throws -> Model {
        let file = try SafeTensors.read(path)
        let t = spec.transformer!
        func fail(_ problem: String) -> FileError { FileError(path, problem) }
        let names = Set(file.entries.map(\.name))
        func find(_ candidates: [String]) throws -> SafeTensorsEntry {
            guard let name = candidates.first(where: names.contains),
                let entry = file.entries.first(where: { $0.name == name })
            else {
                throw fail(
                    "no tensor named \(candidates.joined(separator: " or ")) (see distill import-torch --help)"
                )
            }
            return entry
        }
        let tokens = try find(transformerNames["tokens"]!)
        guard tokens.shape.count == 2, tokens.shape[0] >= 1 else {
            throw fail("\(tokens.name) has shape \(tokens.shape); a token embedding is [V, D]")
        }
        let classes = tokens.shape[0]
        let needed = spec.footprint(inputShape: [t.context], classes: classes).parameters
        if let problem = weightsExceedMemory(needed) { throw fail("\(spec) \(problem)") }
        var generator = SeededGenerator(seed: 0)
        let model = try Model(
            spec: spec, inputShape: [t.context], classes: classes, generator: &generator)
        func load(_ entry: SafeTensorsEntry, into parameter: Parameter, rows: Int? = nil) throws {
            let shape = parameter.value.shape
            // A position table may hold more positions than the context: its first rows are used.
            let fits =
                entry.shape == shape
                || (rows != nil && entry.shape.count == 2 && entry.shape[1] == shape[1]
                    && entry.shape[0] >= shape[0])
            guard fits else {
                throw fail("\(entry.name) has shape \(entry.shape); \(spec) needs \(shape)")
            }
            let values = try file.floats(entry.name)
            guard values.allSatisfy(\.isFinite) else {
                throw fail("\(entry.name) holds non-finite values")
            }
            for i in 0..<parameter.value.count { parameter.value[i] = values[i] }
        }
        func pair(_ prefixes: [String], _ weight: Parameter, _ bias: Parameter) throws {
            try load(find(prefixes.map { $0 + "weight" }), into: weight)
            try load(find(prefixes.map { $0 + "bias" }), into: bias)
        }
        var block = 0
        for layer in model.network.layers {
            switch layer {
            case let embedding as Embedding:
                try load(tokens, into: embedding.weight)
            case let positions as PositionEmbedding:
                try load(
                    find(transformerNames["positions"]!), into: positions.weight, rows: t.context)
            case let b as TransformerBlock:
                let prefixes = transformerNames["block"]!.map {
                    $0.replacingOccurrences(of: "{i}", with: "\(block)")
                }
                func within(_ part: String) -> [String] {
                    prefixes.flatMap { p in transformerNames[part]!.map { p + $0 } }
                }
                try pair(within("ln_1"), b.norm1.weight, b.norm1.bias)
                try load(
                    find(within("attn").map { $0 + "in_proj_weight" }), into: b.attention.inWeight)
                try load(find(within("attn").map { $0 + "in_proj_bias" }), into: b.attention.inBias)
                try pair(
                    within("attn").map { $0 + "out_proj." }, b.attention.outWeight,
                    b.attention.outBias)
                try pair(within("ln_2"), b.norm2.weight, b.norm2.bias)
                try pair(within("c_fc"), b.expand.weight, b.expand.bias)
                try pair(within("c_proj"), b.project.weight, b.project.bias)
                block += 1
            case let norm as LayerNorm:
                try pair(transformerNames["ln_f"]!, norm.weight, norm.bias)
            case let head as Linear:
                if !head.isTied {
                    try load(
                        find(transformerNames["head"]!.map { $0 + "weight" }), into: head.weight)
                }
                // A head without a bias (nanoGPT's lm_head) keeps a zero one.
                if let bias = transformerNames["head"]!.map({ $0 + "bias" }).first(
                    where: names.contains)
                {
                    try load(find([bias]), into: head.bias)
                }
            default:
                continue
            }
        }
        model.metadata = ["imported_from": path, "role": "teacher"]
        return model
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
