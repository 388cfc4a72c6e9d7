import DistillCore
import DistillFormats

/// Saving and loading models as safetensors.
///
/// Tensors are named `layers.<i>.weight` / `layers.<i>.bias` in PyTorch layouts; `__metadata__`
/// holds `format` (`distill-model/1`), `layers` (the layer descriptors, space-separated),
/// `input_shape` (e.g. `1,28,28`), `classes`, `normalization` and `architecture`, plus the
/// model's own `metadata` entries, so that the file alone rebuilds the model.
extension Model {
    public static let checkpointFormat = "distill-model/1"
    static let reservedKeys: Set<String> = [
        "format", "layers", "input_shape", "classes", "normalization", "architecture",
    ]

    /// Writes the model to `path` atomically (temporary file, flush, rename).
    public func save(to path: String) throws {
        var meta = metadata.filter { !Model.reservedKeys.contains($0.key) }
        meta["format"] = Model.checkpointFormat
        meta["layers"] = network.descriptor
        meta["input_shape"] = inputShape.map(String.init).joined(separator: ",")
        meta["classes"] = String(classes)
        meta["normalization"] = normalization.description
        meta["architecture"] = architecture
        let tensors = network.namedParameters.map {
            SafeTensors.Input(
                name: $0.name, shape: $0.parameter.value.shape, values: $0.parameter.value)
        }
        try SafeTensors.write(tensors, metadata: meta, to: path)
    }

    /// Reads a model written by `save(to:)`, validating the file and that its tensors match the
    /// recorded architecture exactly (names, shapes, dtype, no extra tensors).
    /// - Throws: `FileError` naming `path` and the problem.
    public static func load(from path: String) throws -> Model {
        let file = try SafeTensors.read(path)
        func fail(_ problem: String) -> FileError { FileError(path, problem) }
        let meta = file.metadata
        guard meta["format"] == checkpointFormat else {
            throw fail(
                "not a Distill model: __metadata__.format is \(meta["format"].map { "'\($0)'" } ?? "missing"), expected '\(checkpointFormat)'"
            )
        }
        guard let layerText = meta["layers"], let shapeText = meta["input_shape"],
            let classText = meta["classes"],
            let classes = Int(classText), classes >= 1,
            let normalization = InputNormalization(parsing: meta["normalization"] ?? "")
        else {
            throw fail(
                "the model metadata is incomplete or malformed (layers, input_shape, classes, normalization)"
            )
        }
        let shapeParts = shapeText.split(separator: ",").map { Int($0) }
        guard !shapeParts.isEmpty, shapeParts.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 1 << 24 })
        else {
            throw fail("malformed input_shape '\(shapeText)'")
        }
        let inputShape = shapeParts.map { $0! }
        var generator = SeededGenerator(seed: 0)
        let model: Model
        do {
            let tokens = layerText.split(separator: " ").map(String.init)
            guard !tokens.isEmpty, tokens.count <= 4096 else {
                throw ArchitectureError("no layers")
            }
            // The layers are built (their weights allocated) before the tensors are matched.
            let needed = try tokens.reduce(0.0) { $0 + (try LayerDescriptor.parameterCount($1)) }
            if let problem = weightsExceedMemory(needed) {
                throw fail("the recorded layers \(problem)")
            }
            model = try Model(
                network: Sequential(LayerDescriptor.layers(tokens, generator: &generator)),
                inputShape: inputShape, classes: classes,
                normalization: normalization, architecture: meta["architecture"] ?? "",
                metadata: meta.filter { !reservedKeys.contains($0.key) })
        } catch let error as ArchitectureError {
            throw fail("the recorded architecture is invalid: \(error)")
        }
        let named = model.network.namedParameters
        let expectedNames = Set(named.map(\.name))
        if let extra = file.entries.first(where: { !expectedNames.contains($0.name) }) {
            throw fail("unexpected tensor \(extra.name) for the recorded architecture")
        }
        for (name, parameter) in named {
            guard let entry = file.entry(name) else { throw fail("missing tensor \(name)") }
            guard entry.dtype == "F32" else {
                throw fail("tensor \(name) is \(entry.dtype), expected F32")
            }
            guard entry.shape == parameter.value.shape else {
                throw fail(
                    "tensor \(name) has shape \(entry.shape), the architecture needs \(parameter.value.shape)"
                )
            }
            let values = try file.floats(name)
            for i in 0..<values.count { parameter.value[i] = values[i] }
        }
        return model
    }
}
