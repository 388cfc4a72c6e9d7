import DistillCore

/// NumPy's `.npy` format, versions 1.0 to 3.0: the magic `\x93NUMPY`, a version, a header length
/// (2 bytes in 1.0, 4 in 2.0 and 3.0), a Python dict literal
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (N, C), }`, then the data in C order.
///
/// Reads float16, float32, float64, int32, int64 and uint8 in either byte order; writes float32
/// and int64 (little-endian, version 1.0, header padded to 64 bytes as NumPy does).
public enum NPY {
    public enum ElementType: String, Sendable, Equatable {
        case float16 = "f2"
        case float32 = "f4"
        case float64 = "f8"
        case int32 = "i4"
        case int64 = "i8"
        case uint8 = "u1"
        public var size: Int {
            switch self {
            case .uint8: return 1
            case .float16: return 2
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            }
        }
        public var isFloatingPoint: Bool {
            self == .float16 || self == .float32 || self == .float64
        }
        /// NumPy's name of the type.
        public var name: String {
            [
                "f2": "float16", "f4": "float32", "f8": "float64", "i4": "int32", "i8": "int64",
                "u1": "uint8",
            ][rawValue]!
        }
    }

    /// What an NPY header says: the array's shape and element type, and where its data starts.
    public struct Header: Sendable, Equatable {
        public let shape: [Int]
        public let type: ElementType
        public let bigEndian: Bool
        public let dataOffset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    /// An array read from an NPY file: its shape, element type, and raw data.
    public struct NDArray: Sendable {
        public let shape: [Int]
        public let type: ElementType
        public let bigEndian: Bool
        public let path: String
        let data: [UInt8]

        /// The number of elements.
        public var count: Int { shape.reduce(1, *) }

        /// The elements as Float (from any element type; int64 beyond 2^24 loses precision).
        public func floats() -> [Float] {
            data.withUnsafeBytes { raw in
                (0..<count).map {
                    Float(
                        type.isFloatingPoint
                            ? floatingPoint(at: $0, raw) : Double(integer(at: $0, raw)))
                }
            }
        }

        /// The elements as integers.
        /// - Throws: `FileError` if the array holds floating-point values.
        public func integers() throws -> [Int64] {
            guard !type.isFloatingPoint else {
                throw FileError(
                    path, "holds \(type.name) values where integers (labels) were expected")
            }
            return data.withUnsafeBytes { raw in (0..<count).map { integer(at: $0, raw) } }
        }

        /// Element `i` as Double (exact for every type but large int64).
        public func value(at i: Int) -> Double {
            data.withUnsafeBytes { raw in
                type.isFloatingPoint ? floatingPoint(at: i, raw) : Double(integer(at: i, raw))
            }
        }

        /// Element `i` of an integer array, exactly.
        private func integer(at i: Int, _ raw: UnsafeRawBufferPointer) -> Int64 {
            NPY.integer(raw.baseAddress! + i * type.size, type: type, bigEndian: bigEndian)
        }

        /// Element `i` of a float16, float32 or float64 array.
        private func floatingPoint(at i: Int, _ raw: UnsafeRawBufferPointer) -> Double {
            NPY.floatingPoint(raw.baseAddress! + i * type.size, type: type, bigEndian: bigEndian)
        }

        /// The raw bytes when the type is uint8 (no copy of the values' meaning).
        public var uint8Values: [UInt8]? { type == .uint8 ? data : nil }
    }

    /// An integer element at `p`, exactly.
    @inline(__always)
    static func integer(_ p: UnsafeRawPointer, type: ElementType, bigEndian: Bool) -> Int64 {
        switch type {
        case .uint8: return Int64(p.load(as: UInt8.self))
        case .int32:
            let bits = p.loadUnaligned(as: UInt32.self)
            return Int64(
                Int32(bitPattern: bigEndian ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits)))
        default:
            let bits = p.loadUnaligned(as: UInt64.self)
            return Int64(
                bitPattern: bigEndian ? UInt64(bigEndian: bits) : UInt64(littleEndian: bits))
        }
    }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
    /// The six bytes every NPY file starts with.
    public static var magicBytes: [UInt8] { magic }

    /// Reads and validates an NPY file.
    /// - Throws: `FileError` naming `path` and what is wrong.
    public static func read(_ path: String) throws -> NDArray {
        try parse(readFileBytes(path), path: path)
    }

    /// Parses NPY bytes; `path` names the file in errors.
    public static func parse(_ bytes: [UInt8], path: String) throws -> NDArray {
        let header = try bytes.withUnsafeBytes { try parseHeader($0, path: path) }
        return NDArray(
            shape: header.shape, type: header.type, bigEndian: header.bigEndian, path: path,
            data: Array(bytes[header.dataOffset...]))
    }

    /// A floating-point element at `p` as Double.
    @inline(__always)
    static func floatingPoint(_ p: UnsafeRawPointer, type: ElementType, bigEndian: Bool) -> Double {
        switch type {
        case .float16:
            let bits = p.loadUnaligned(as: UInt16.self)
            return Double(
                Float(halfBits: bigEndian ? UInt16(bigEndian: bits) : UInt16(littleEndian: bits)))
        case .float32:
            let bits = p.loadUnaligned(as: UInt32.self)
            return Double(
                Float(bitPattern: bigEndian ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits)))
        default:
            let bits = p.loadUnaligned(as: UInt64.self)
            return Double(
                bitPattern: bigEndian ? UInt64(bigEndian: bits) : UInt64(littleEndian: bits))
        }
    }

    /// Parses and validates the header of an NPY file whose bytes are `bytes` (the whole file:
    /// the data's size is checked against the shape).
    public static func parseHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Header {
        func fail(_ problem: String) -> FileError {
            FileError(path, "not a valid NPY file: \(problem)")
        }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("bad magic (expected \\x93NUMPY)")
        }
        let major = bytes[6]
        let headerStart: Int
        let headerLength: Int
        switch major {
        case 1:
            headerStart = 10
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("\(bytes.count) bytes is too short") }
            headerStart = 12
            headerLength =
                Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        default:
            throw fail("unsupported format version \(major).\(bytes[7]) (1.0 to 3.0 are read)")
        }
        guard headerLength <= bytes.count - headerStart else {
            throw fail("header length \(headerLength) exceeds the file size (\(bytes.count) bytes)")
        }
        guard
            let header = String(
                validating: UnsafeRawBufferPointer(
                    rebasing: bytes[headerStart..<(headerStart + headerLength)]), as: UTF8.self)
        else {
            throw fail("the header is not text")
        }
        let fields: [String: HeaderValue]
        var parser = HeaderParser(header)
        do { fields = try parser.parseDict() } catch {
            throw fail("cannot parse the header \(header.trimmed): \(error)")
        }
        guard case .string(let descr)? = fields["descr"] else {
            throw fail("the header has no 'descr'")
        }
        guard case .bool(let fortran)? = fields["fortran_order"] else {
            throw fail("the header has no 'fortran_order'")
        }
        guard case .tuple(let shape)? = fields["shape"] else {
            throw fail("the header has no 'shape'")
        }
        guard descr.count == 3, let order = descr.first, "<>|=".contains(order),
            let type = ElementType(rawValue: String(descr.dropFirst()))
        else {
            throw FileError(
                path,
                "NPY dtype '\(descr)' is not supported (float16, float32, float64, int32, int64 and uint8 are)"
            )
        }
        guard !fortran else {
            throw FileError(
                path,
                "the array is in Fortran order; save it in C order (numpy.ascontiguousarray) and try again"
            )
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw fail("negative dimension in shape \(shape)")
        }
        let dataStart = headerStart + headerLength
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= bytes.count else {
                throw FileError(
                    path,
                    "NPY header declares shape \(shape), more data than the file holds (\(bytes.count - dataStart) bytes)"
                )
            }
            count = product
        }
        let (needed, overflow) = count.multipliedReportingOverflow(by: type.size)
        guard !overflow, needed == bytes.count - dataStart else {
            throw FileError(
                path,
                "NPY header declares shape \(shape) of \(descr) (\(overflow ? -1 : needed) bytes) but the file has \(bytes.count - dataStart) bytes of data"
            )
        }
        let bigEndian: Bool
        switch order {
        case ">": bigEndian = true
        case "<": bigEndian = false
        default: bigEndian = false.hostIsBigEndian
        }
        return Header(
            shape: shape, type: type, bigEndian: type == .uint8 ? false : bigEndian,
            dataOffset: dataStart)
    }

    /// Writes float32 values (`<f4`) with `shape`, atomically.
    public static func write(floats: UnsafeBufferPointer<Float>, shape: [Int], to path: String)
        throws
    {
        precondition(
            shape.reduce(1, *) == floats.count,
            "NPY.write: shape \(shape) for \(floats.count) values")
        try write(header: header(descr: "<f4", shape: shape), to: path) { fd in
            #if _endian(big)
            let swapped = floats.map { $0.bitPattern.littleEndian }
            try swapped.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) }
            #else
            try AtomicFile.writeAll(fd, UnsafeRawBufferPointer(floats), path: path)
            #endif
        }
    }

    /// Writes float32 values (`<f4`) with `shape`, atomically.
    public static func write(floats: [Float], shape: [Int], to path: String) throws {
        try floats.withUnsafeBufferPointer { try write(floats: $0, shape: shape, to: path) }
    }

    /// Writes an array of `shape` atomically, its values streamed in order by `body` through the
    /// `append` it is given, so that an array larger than memory can be written. `Element` is
    /// Float (`<f4`) or Int32 (`<i4`).
    /// - Throws: `FileError` for a write that fails, or values that do not fill `shape` exactly.
    public static func write<Element: FixedWidthStreamable>(
        _: Element.Type, shape: [Int], to path: String,
        _ body: (_ append: (UnsafeBufferPointer<Element>) throws -> Void) throws -> Void
    ) throws {
        let expected = shape.reduce(1, *)
        var written = 0
        try write(header: header(descr: Element.npyDescr, shape: shape), to: path) { fd in
            try body { values in
                written += values.count
                guard written <= expected else {
                    throw FileError(path, "more values than the shape \(shape) holds")
                }
                #if _endian(big)
                let swapped = values.map { $0.littleEndianBits }
                try swapped.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) }
                #else
                try AtomicFile.writeAll(fd, UnsafeRawBufferPointer(values), path: path)
                #endif
            }
            guard written == expected else {
                throw FileError(path, "\(written) values for the shape \(shape) (\(expected))")
            }
        }
    }

    /// Writes int64 values (`<i8`) with `shape`, atomically.
    public static func write(int64 values: [Int64], shape: [Int], to path: String) throws {
        precondition(
            shape.reduce(1, *) == values.count,
            "NPY.write: shape \(shape) for \(values.count) values")
        let little = values.map { $0.littleEndian }
        try write(header: header(descr: "<i8", shape: shape), to: path) { fd in
            try little.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) }
        }
    }

    /// The version 1.0 (or 2.0 if needed) preamble and header, padded with spaces and a newline to
    /// a multiple of 64 bytes.
    static func header(descr: String, shape: [Int]) -> [UInt8] {
        let shapeText =
            shape.count == 1
            ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = Array(
            "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        let long = dict.count + 11 > 65535
        let preamble = long ? 12 : 10
        while (preamble + dict.count + 1) % 64 != 0 { dict.append(0x20) }
        dict.append(0x0A)
        var out = magic + [long ? 2 : 1, 0]
        let n = dict.count
        out +=
            long
            ? [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24 & 0xFF)]
            : [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF)]
        return out + dict
    }

    private static func write(header: [UInt8], to path: String, _ body: (Int32) throws -> Void)
        throws
    {
        try AtomicFile.write(to: path) { fd in
            try header.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) }
            try body(fd)
        }
    }
}

extension Bool {
    fileprivate var hostIsBigEndian: Bool {
        #if _endian(big)
        return true
        #else
        return false
        #endif
    }
}

extension String {
    fileprivate var trimmed: String {
        var s = Substring(self)
        while let c = s.last, c == " " || c == "\n" { s.removeLast() }
        return String(s)
    }
}

/// A value in an NPY header dict.
enum HeaderValue: Equatable {
    case string(String)
    case bool(Bool)
    case tuple([Int])
}

/// Parses the Python dict literal of an NPY header: string keys, and values that are strings,
/// True/False, or tuples of integers.
struct HeaderParser {
    struct Failure: Error, CustomStringConvertible { let description: String }
    private let chars: [Character]
    private var i = 0

    init(_ text: String) { chars = Array(text) }

    mutating func parseDict() throws -> [String: HeaderValue] {
        skipSpace()
        try expect("{")
        var result: [String: HeaderValue] = [:]
        while true {
            skipSpace()
            if peek == "}" {
                i += 1
                break
            }
            let key = try parseString()
            skipSpace()
            try expect(":")
            skipSpace()
            result[key] = try parseValue()
            skipSpace()
            if peek == "," {
                i += 1
                continue
            }
            skipSpace()
            try expect("}")
            break
        }
        return result
    }

    private var peek: Character? { i < chars.count ? chars[i] : nil }

    private mutating func skipSpace() { while let c = peek, c.isWhitespace { i += 1 } }

    private mutating func expect(_ c: Character) throws {
        guard peek == c else { throw Failure(description: "expected '\(c)' at offset \(i)") }
        i += 1
    }

    private mutating func parseString() throws -> String {
        guard let quote = peek, quote == "'" || quote == "\"" else {
            throw Failure(description: "expected a string at offset \(i)")
        }
        i += 1
        var s = ""
        while let c = peek, c != quote {
            s.append(c)
            i += 1
        }
        try expect(quote)
        return s
    }

    private mutating func parseValue() throws -> HeaderValue {
        switch peek {
        case "'", "\"": return .string(try parseString())
        case "(":
            i += 1
            var values: [Int] = []
            while true {
                skipSpace()
                if peek == ")" {
                    i += 1
                    break
                }
                var digits = ""
                while let c = peek, c.isNumber || c == "-" {
                    digits.append(c)
                    i += 1
                }
                if peek == "L" { i += 1 }  // Python 2 longs
                guard let v = Int(digits) else {
                    throw Failure(description: "expected an integer at offset \(i)")
                }
                values.append(v)
                skipSpace()
                if peek == "," { i += 1 }
            }
            return .tuple(values)
        default:
            var word = ""
            while let c = peek, c.isLetter {
                word.append(c)
                i += 1
            }
            if word == "True" { return .bool(true) }
            if word == "False" { return .bool(false) }
            throw Failure(description: "unexpected value '\(word)' at offset \(i)")
        }
    }
}

/// An element type `NPY.write(_:shape:to:_:)` streams: its NPY descriptor and little-endian bits.
public protocol FixedWidthStreamable {
    static var npyDescr: String { get }
    var littleEndianBits: UInt32 { get }
}

extension Float: FixedWidthStreamable {
    public static var npyDescr: String { "<f4" }
    public var littleEndianBits: UInt32 { bitPattern.littleEndian }
}

extension Int32: FixedWidthStreamable {
    public static var npyDescr: String { "<i4" }
    public var littleEndianBits: UInt32 { UInt32(bitPattern: self).littleEndian }
}
