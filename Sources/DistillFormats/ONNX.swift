/// The few ONNX messages a feed-forward classifier or a transformer needs, encoded by hand from `onnx.proto`
/// (ONNX 1.x; field numbers in the comments). See `Model.onnx()` for the graph itself.
public enum ONNX {
    /// The IR version written (ONNX 1.13+, readable by onnxruntime 1.14+).
    public static let irVersion = 8
    /// The default-domain operator set written.
    public static let opset = 17

    /// `TensorProto.DataType.FLOAT`.
    public static let float32 = 1

    /// A float32 initializer: `TensorProto { dims = 1, data_type = 2, name = 8, raw_data = 9 }`.
    public static func tensor(_ name: String, dims: [Int], values: UnsafeBufferPointer<Float>)
        -> ProtobufWriter
    {
        precondition(dims.reduce(1, *) == values.count)
        var t = ProtobufWriter()
        for d in dims { t.int(1, d) }
        t.int(2, float32)
        t.string(8, name)
        var raw = [UInt8]()
        raw.reserveCapacity(values.count * 4)
        for v in values {
            let bits = v.bitPattern.littleEndian  // raw_data is little-endian
            raw += [
                UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF),
                UInt8(bits >> 24),
            ]
        }
        t.bytes(9, raw)
        return t
    }

    /// A one-dimensional int64 initializer (`data_type` 7), such as `Reshape`'s target shape.
    public static func int64Tensor(_ name: String, values: [Int]) -> ProtobufWriter {
        var t = ProtobufWriter()
        t.int(1, values.count)
        t.int(2, 7)
        t.string(8, name)
        var raw = [UInt8]()
        for v in values {
            let bits = UInt64(bitPattern: Int64(v)).littleEndian
            for byte in 0..<8 { raw.append(UInt8((bits >> (8 * UInt64(byte))) & 0xFF)) }
        }
        t.bytes(9, raw)
        return t
    }

    /// An attribute: `AttributeProto { name = 1, f = 2, i = 3, ints = 8, type = 20 }`.
    public enum Attribute: Sendable {
        case int(String, Int)
        case ints(String, [Int])
        case float(String, Float)

        var encoded: ProtobufWriter {
            var a = ProtobufWriter()
            switch self {
            case .int(let name, let v):
                a.string(1, name)
                a.int(3, v)
                a.int(20, 2)  // AttributeType.INT
            case .ints(let name, let v):
                a.string(1, name)
                for x in v { a.int(8, x) }
                a.int(20, 7)  // INTS
            case .float(let name, let v):
                a.string(1, name)
                a.float(2, v)
                a.int(20, 1)  // FLOAT
            }
            return a
        }
    }

    /// A node: `NodeProto { input = 1, output = 2, name = 3, op_type = 4, attribute = 5 }`.
    public static func node(
        _ op: String, inputs: [String], outputs: [String], name: String,
        attributes: [Attribute] = []
    ) -> ProtobufWriter {
        var n = ProtobufWriter()
        for i in inputs { n.string(1, i) }
        for o in outputs { n.string(2, o) }
        n.string(3, name)
        n.string(4, op)
        for a in attributes { n.message(5, a.encoded) }
        return n
    }

    /// A float32 graph input or output: `ValueInfoProto { name = 1, type = 2 }`, `TypeProto {
    /// tensor_type = 1 }`, `Tensor { elem_type = 1, shape = 2 }`, `TensorShapeProto { dim = 1 }`,
    /// `Dimension { dim_value = 1, dim_param = 2 }`; a nil dimension is the symbolic `batch`.
    public static func valueInfo(_ name: String, dims: [Int?]) -> ProtobufWriter {
        var v = ProtobufWriter()
        v.string(1, name)
        v.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, float32)
                tensor.message(2) { shape in
                    for d in dims {
                        shape.message(1) { dim in
                            if let d { dim.int(1, d) } else { dim.string(2, "batch") }
                        }
                    }
                }
            }
        }
        return v
    }

    /// A model: `GraphProto { node = 1, name = 2, initializer = 5, input = 11, output = 12 }` in
    /// `ModelProto { ir_version = 1, producer_name = 2, producer_version = 3, graph = 7,
    /// opset_import = 8 }`, `OperatorSetIdProto { domain = 1, version = 2 }`.
    public static func model(
        name: String, nodes: [ProtobufWriter], initializers: [ProtobufWriter],
        inputs: [ProtobufWriter], outputs: [ProtobufWriter], producer: String
    ) -> [UInt8] {
        var graph = ProtobufWriter()
        for n in nodes { graph.message(1, n) }
        graph.string(2, name)
        for t in initializers { graph.message(5, t) }
        for i in inputs { graph.message(11, i) }
        for o in outputs { graph.message(12, o) }
        var model = ProtobufWriter()
        model.int(1, irVersion)
        model.string(2, producer)
        model.string(3, "1")
        model.message(7, graph)
        model.message(8) { set in
            set.string(1, "")
            set.int(2, ONNX.opset)
        }
        return model.bytes
    }
}
