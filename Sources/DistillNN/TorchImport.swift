import DistillCore
import DistillFormats

/// Models trained in PyTorch, brought in as teachers.
public enum TorchImport {
    /// A model of architecture `spec` whose weights come from a PyTorch `state_dict` saved with
    /// `safetensors.torch.save_file(model.state_dict(), path)`.
    ///
    /// The state dict's `*.weight` / `*.bias` pairs are taken in the order of their module names
    /// (numbers compared as numbers: `net.2` before `net.10`), which for `nn.Sequential` and for
    /// modules registered in forward order is the order of the layers; each must match the
    /// corresponding `Linear` (`[out, in]`) or `Conv2d` (`[out, in, kh, kw]`) of `spec` in shape.
    /// The class count is the first dimension of the last weight. F32, F16, BF16 and F64 are read.
    /// A transformer is matched by name instead (see `transformerNames`); `inputShape` and
    /// `normalization` do not apply to it.
    /// - Throws: `FileError` naming the file and the first mismatch.
    public static func model(
        stateDict path: String, spec: ArchitectureSpec, inputShape: [Int],
        normalization: InputNormalization
    ) throws -> Model {
        if spec.transformer != nil { return try transformer(stateDict: path, spec: spec) }
        let file = try SafeTensors.read(path)
        func fail(_ problem: String) -> FileError { FileError(path, problem) }
        var groups: [String: (weight: SafeTensorsEntry?, bias: SafeTensorsEntry?)] = [:]
        for entry in file.entries {
            if entry.name.hasSuffix(".weight") {
                groups[String(entry.name.dropLast(7)), default: (nil, nil)].weight = entry
            } else if entry.name.hasSuffix(".bias") {
                groups[String(entry.name.dropLast(5)), default: (nil, nil)].bias = entry
            } else {
                throw fail(
                    "tensor \(entry.name) is neither a weight nor a bias (batch norm and other layers with state are not supported)"
                )
            }
        }
        let order = groups.keys.sorted(by: naturalOrder)
        for module in order where groups[module]!.weight == nil || groups[module]!.bias == nil {
            throw fail(
                "module \(module) has \(groups[module]!.weight == nil ? "a bias but no weight" : "a weight but no bias") (layers need both)"
            )
        }
        guard let last = order.last, let lastWeight = groups[last]!.weight,
            let classes = lastWeight.shape.first, classes >= 1
        else {
            throw fail("the state dict holds no weights")
        }
        let needed = spec.footprint(inputShape: inputShape, classes: classes).parameters
        if let problem = weightsExceedMemory(needed) {
            throw fail("\(spec) on input \(inputShape) \(problem)")
        }
        var generator = SeededGenerator(seed: 0)
        let model: Model
        do {
            model = try Model(
                spec: spec, inputShape: inputShape, classes: classes, normalization: normalization,
                generator: &generator)
        } catch let error as ArchitectureError {
            throw fail(
                "architecture \(spec) does not fit input \(inputShape) and \(classes) classes: \(error)"
            )
        }
        let layers = model.network.layers.filter { !$0.parameters.isEmpty }
        guard layers.count == order.count else {
            throw fail(
                "holds \(order.count) layers with weights (\(order.joined(separator: ", "))); \(spec) has \(layers.count)"
            )
        }
        for (module, layer) in zip(order, layers) {
            let (weight, bias) = (groups[module]!.weight!, groups[module]!.bias!)
            let (ours, ourBias) = (layer.parameters[0].value, layer.parameters[1].value)
            guard weight.shape == ours.shape else {
                throw fail(
                    "\(module).weight has shape \(weight.shape); layer \(layer.descriptor) of \(spec) needs \(ours.shape)"
                )
            }
            guard bias.shape == ourBias.shape else {
                throw fail(
                    "\(module).bias has shape \(bias.shape); layer \(layer.descriptor) of \(spec) needs \(ourBias.shape)"
                )
            }
            let w = try file.floats(weight.name)
            let b = try file.floats(bias.name)
            guard (w + b).allSatisfy(\.isFinite) else {
                throw fail("\(module) holds non-finite values")
            }
            for i in 0..<w.count { ours[i] = w[i] }
            for i in 0..<b.count { ourBias[i] = b[i] }
        }
        model.metadata = ["imported_from": path, "role": "teacher"]
        return model
    }

    /// `a` before `b` comparing dot-separated parts, numbers as numbers.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: ".")
        let y = b.split(separator: ".")
        for (p, q) in zip(x, y) where p != q {
            if let i = Int(p), let j = Int(q) { return i < j }
            return p < q
        }
        return x.count < y.count
    }
}
