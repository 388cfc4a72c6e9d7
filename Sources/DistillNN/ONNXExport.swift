import DistillCore
import DistillFormats

extension Model {
    /// The model as an ONNX graph (opset 17) for inference elsewhere (onnxruntime, Core ML
    /// converters, TensorRT, ...).
    ///
    /// Input `input`: float32 `[batch, ...inputShape]` of raw values (pixels 0...255 for images),
    /// normalised in the graph as `distill` does: `(x / divisor - mean) / std`. Outputs `logits`
    /// `[batch, classes]` and `probabilities`, their softmax at T = 1. Linear layers become `Gemm`
    /// (`transB = 1`, weights stay `[out, in]`), convolutions `Conv`, pooling `MaxPool`, ReLU `Relu`;
    /// dropout is the identity at inference and is left out.
    /// A transformer language model is written by `transformerONNX`: input `[batch, context]`
    /// token ids, outputs `[batch, context, classes]`.
    /// - Precondition: the model is not a tagger (`isTagger`), which has no ONNX form.
    public func onnx(name: String = "distill") -> [UInt8] {
        if isTransformer { return transformerONNX(name: name) }
        var nodes: [ProtobufWriter] = []
        var initializers: [ProtobufWriter] = []
        var current = "input"
        var rank = 1 + inputShape.count
        var counter = 0
        func add(
            _ op: String, inputs: [String], attributes: [ONNX.Attribute] = [], output: String? = nil
        ) {
            counter += 1
            let out = output ?? "\(op.lowercased())_\(counter)"
            nodes.append(
                ONNX.node(
                    op, inputs: [current] + inputs, outputs: [out], name: "\(op)_\(counter)",
                    attributes: attributes))
            current = out
        }
        func constant(_ label: String, _ value: Float) -> String {
            let tensorName = "normalization.\(label)"
            initializers.append(
                [value].withUnsafeBufferPointer { ONNX.tensor(tensorName, dims: [], values: $0) })
            return tensorName
        }
        if normalization.divisor != 1 {
            add("Div", inputs: [constant("divisor", normalization.divisor)])
        }
        if normalization.mean != 0 { add("Sub", inputs: [constant("mean", normalization.mean)]) }
        if normalization.std != 1 { add("Div", inputs: [constant("std", normalization.std)]) }
        for (index, layer) in network.layers.enumerated() {
            let prefix = "layers.\(index)"
            func parameter(_ p: Parameter, _ suffix: String) -> String {
                let tensorName = "\(prefix).\(suffix)"
                initializers.append(
                    ONNX.tensor(
                        tensorName, dims: p.value.shape, values: UnsafeBufferPointer(p.value.buffer)
                    ))
                return tensorName
            }
            switch layer {
            case let linear as Linear:
                if rank > 2 {
                    add("Flatten", inputs: [], attributes: [.int("axis", 1)])
                    rank = 2
                }
                add(
                    "Gemm",
                    inputs: [parameter(linear.weight, "weight"), parameter(linear.bias, "bias")],
                    attributes: [.int("transB", 1)])
            case let conv as Conv2D:
                add(
                    "Conv",
                    inputs: [parameter(conv.weight, "weight"), parameter(conv.bias, "bias")],
                    attributes: [
                        .ints("kernel_shape", [conv.kernelHeight, conv.kernelWidth]),
                        .ints("strides", [conv.stride, conv.stride]),
                        .ints("pads", [conv.padding, conv.padding, conv.padding, conv.padding]),
                    ])
            case let pool as MaxPool2D:
                add(
                    "MaxPool", inputs: [],
                    attributes: [
                        .ints("kernel_shape", [pool.kernel, pool.kernel]),
                        .ints("strides", [pool.stride, pool.stride]),
                    ])
            case is ReLU:
                add("Relu", inputs: [])
            case is Flatten:
                add("Flatten", inputs: [], attributes: [.int("axis", 1)])
                rank = 2
            case is Dropout:
                continue
            default:
                preconditionFailure("no ONNX form for layer \(layer.descriptor)")
            }
        }
        // The last node's output is renamed `logits`; a softmax adds `probabilities`.
        if nodes.isEmpty { add("Identity", inputs: []) }
        counter += 1
        nodes.append(ONNX.node("Identity", inputs: [current], outputs: ["logits"], name: "logits"))
        nodes.append(
            ONNX.node(
                "Softmax", inputs: ["logits"], outputs: ["probabilities"], name: "probabilities",
                attributes: [.int("axis", 1)]))
        return ONNX.model(
            name: name, nodes: nodes, initializers: initializers,
            inputs: [ONNX.valueInfo("input", dims: [nil] + inputShape.map { $0 })],
            outputs: [
                ONNX.valueInfo("logits", dims: [nil, classes]),
                ONNX.valueInfo("probabilities", dims: [nil, classes]),
            ],
            producer: "distill")
    }
}
