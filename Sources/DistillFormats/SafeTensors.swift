import DistillCore
import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length `n`, `n` bytes of
/// JSON, then the tensor bytes. The JSON maps each tensor name to
/// `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}` (offsets relative to the data
/// section) and may hold `"__metadata__"`, a string-to-string map.
public enum SafeTensors {
    /// Element types this reader understands, with their sizes in bytes.
    public static let elementSizes: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
        "BOOL": 1,
    ]
    /// The largest header accepted (the reference implementation's limit).
    public static let maximumHeaderLength = 100_000_000

    /// A tensor to write: its name, shape and Float32 values.
    public struct Input {
        public let name: String
        public let shape: [Int]
        public let values: Tensor
        public init(name: String, shape: [Int], values: Tensor) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Writes Float32 tensors and metadata to `path` atomically. The header lists tensors in the
    /// given order and is padded with spaces to a multiple of 8 bytes; the same inputs always give
    /// the same bytes.
    public static func write(_ tensors: [Input], metadata: [String: String], to path: String) throws
    {
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let entries = metadata.keys.sorted().map {
                "\(jsonString($0)):\(jsonString(metadata[$0]!))"
            }
            fields.append("\"__metadata__\":{\(entries.joined(separator: ","))}")
        }
        var offset = 0
        for t in tensors {
            precondition(
                Tensor.elementCount(t.shape) == t.values.count,
                "SafeTensors.write: shape of \(t.name)")
            let size = t.values.count * 4
            fields.append(
                "\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}"
            )
            offset += size
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        try AtomicFile.write(to: path) { fd in
            var length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &length) { try AtomicFile.writeAll(fd, $0, path: path) }
            try headerBytes.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) }
            for t in tensors {
                #if _endian(big)
                let swapped = t.values.values.map { $0.bitPattern.littleEndian }
                try swapped.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) }
                #else
                try AtomicFile.writeAll(fd, UnsafeRawBufferPointer(t.values.buffer), path: path)
                #endif
            }
        }
    }

    /// Reads and validates a whole file.
    /// - Throws: `FileError` naming `path` and the first problem found.
    public static func read(_ path: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(bytes: try readFileBytes(path), path: path)
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// One tensor's entry in a safetensors header.
public struct SafeTensorsEntry: Equatable, Sendable {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    /// Byte range within the data section.
    public let byteRange: Range<Int>
}

/// A validated safetensors file held in memory.
public struct SafeTensorsFile {
    public let path: String
    public let metadata: [String: String]
    /// The tensors, in the order of their data.
    public let entries: [SafeTensorsEntry]
    private let bytes: [UInt8]
    private let dataStart: Int

    /// Parses and validates `bytes`; `path` names the file in errors.
    public init(bytes: [UInt8], path: String) throws {
        func fail(_ problem: String) -> FileError {
            FileError(path, "not a valid safetensors file: \(problem)")
        }
        self.path = path
        self.bytes = bytes
        guard bytes.count >= 8 else {
            throw fail("\(bytes.count) bytes is too short for the 8-byte header length")
        }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length <= UInt64(SafeTensors.maximumHeaderLength) else {
            throw fail(
                "header length \(length) exceeds the limit of \(SafeTensors.maximumHeaderLength) bytes"
            )
        }
        guard Int(length) <= bytes.count - 8 else {
            throw fail("header length \(length) exceeds the file size (\(bytes.count) bytes)")
        }
        let headerLength = Int(length)
        dataStart = 8 + headerLength
        guard headerLength >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw fail("the header does not start with '{'")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]), options: [])
        } catch {
            throw fail("the header is not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [SafeTensorsEntry] = []
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw fail("__metadata__ is not an object")
                }
                for (k, v) in map {
                    guard let s = v as? String else {
                        throw fail("__metadata__[\(k)] is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw fail("entry \(name) is not an object")
            }
            guard let dtype = info["dtype"] as? String, let size = SafeTensors.elementSizes[dtype]
            else {
                throw fail(
                    "tensor \(name) has an unknown dtype \(String(describing: info["dtype"] ?? "(none)"))"
                )
            }
            guard let shapeAny = info["shape"] as? [Any], let shape = integers(shapeAny),
                shape.allSatisfy({ $0 >= 0 })
            else {
                throw fail("tensor \(name) has no valid shape")
            }
            guard let offsetsAny = info["data_offsets"] as? [Any],
                let offsets = integers(offsetsAny),
                offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1]
            else {
                throw fail("tensor \(name) has no valid data_offsets")
            }
            var elements = 1
            for d in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw fail("tensor \(name) has a shape too large: \(shape)")
                }
                elements = product
            }
            let (byteCount, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow, byteCount == offsets[1] - offsets[0] else {
                throw fail(
                    "tensor \(name): shape \(shape) of \(dtype) needs \(overflow ? -1 : byteCount) bytes but data_offsets span \(offsets[1] - offsets[0])"
                )
            }
            guard offsets[1] <= bytes.count - dataStart else {
                throw fail(
                    "tensor \(name): data_offsets end \(offsets[1]) is past the end of the data (\(bytes.count - dataStart) bytes)"
                )
            }
            entries.append(
                SafeTensorsEntry(
                    name: name, dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1]))
        }
        entries.sort {
            ($0.byteRange.lowerBound, $0.byteRange.upperBound) < (
                $1.byteRange.lowerBound, $1.byteRange.upperBound
            )
        }
        var expected = 0
        for e in entries {
            guard e.byteRange.lowerBound == expected else {
                throw fail(
                    e.byteRange.lowerBound < expected
                        ? "tensor \(e.name) overlaps another tensor"
                        : "there is a gap in the data before tensor \(e.name)")
            }
            expected = e.byteRange.upperBound
        }
        guard expected == bytes.count - dataStart else {
            throw fail(
                "the data section has \(bytes.count - dataStart) bytes but the tensors cover \(expected)"
            )
        }
        self.metadata = metadata
        self.entries = entries
    }

    /// The entry named `name`, if any.
    public func entry(_ name: String) -> SafeTensorsEntry? { entries.first { $0.name == name } }

    /// The values of tensor `name` converted to Float32 (from F32, F16, BF16 or F64).
    /// - Throws: `FileError` when there is no such tensor or its dtype is not a float type.
    public func floats(_ name: String) throws -> [Float] {
        guard let e = entry(name) else { throw FileError(path, "has no tensor named \(name)") }
        let count = e.byteRange.count / max(SafeTensors.elementSizes[e.dtype]!, 1)
        let start = dataStart + e.byteRange.lowerBound
        return try bytes.withUnsafeBytes { raw -> [Float] in
            let base = raw.baseAddress! + start
            switch e.dtype {
            case "F32":
                return (0..<count).map {
                    Float(
                        bitPattern: UInt32(
                            littleEndian: base.loadUnaligned(
                                fromByteOffset: 4 * $0, as: UInt32.self)))
                }
            case "F64":
                return (0..<count).map {
                    Float(
                        Double(
                            bitPattern: UInt64(
                                littleEndian: base.loadUnaligned(
                                    fromByteOffset: 8 * $0, as: UInt64.self))))
                }
            case "F16":
                return (0..<count).map {
                    Float(
                        halfBits: UInt16(
                            littleEndian: base.loadUnaligned(
                                fromByteOffset: 2 * $0, as: UInt16.self)))
                }
            case "BF16":
                return (0..<count).map {
                    Float(
                        bitPattern: UInt32(
                            UInt16(
                                littleEndian: base.loadUnaligned(
                                    fromByteOffset: 2 * $0, as: UInt16.self))) << 16)
                }
            default:
                throw FileError(
                    path,
                    "tensor \(name) has dtype \(e.dtype), expected a float type (F32, F16, BF16, F64)"
                )
            }
        }
    }
}

private func integers(_ values: [Any]) -> [Int]? {
    var out: [Int] = []
    for v in values {
        guard let n = v as? NSNumber else { return nil }
        let d = n.doubleValue
        guard d.rounded() == d, d >= -9.0e15, d <= 9.0e15 else { return nil }
        out.append(n.intValue)
    }
    return out
}

extension Float {
    /// Converts IEEE 754 half-precision bits (handles subnormals, infinities and NaN).
    public init(halfBits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24
            self = sign != 0 ? -magnitude : magnitude
        } else if exponent == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
        }
    }
}
