import DistillCore

/// The IDX format of MNIST and Fashion-MNIST: two zero bytes, a type byte (0x08 = unsigned byte),
/// the number of dimensions, each dimension as a big-endian UInt32, then the data. Files may be
/// gzip-compressed (`.gz`); compression is detected from the content, not the name.
public enum IDX {
    /// An unsigned-byte array read from an IDX file.
    public struct NDArray: Equatable, Sendable {
        public let shape: [Int]
        public let bytes: [UInt8]
    }

    private static let typeNames: [UInt8: String] = [
        0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float",
        0x0E: "double",
    ]

    /// Reads and validates an unsigned-byte IDX file, raw or gzip-compressed.
    /// - Throws: `FileError` naming `path` and what is wrong (magic, type, dimensions, size).
    public static func read(_ path: String) throws -> NDArray {
        try parse(readFileBytes(path), path: path)
    }

    /// Parses IDX bytes (raw or gzip); `path` names the file in errors. Memory is bounded by the
    /// file: a header claiming more elements than the bytes present can hold is refused before any
    /// allocation of that size.
    public static func parse(_ file: [UInt8], path: String) throws -> NDArray {
        if GzipReader.isGzip(file) {
            let reader = try GzipReader(file, path: path)
            let magic = try readHeader(path) { try reader.read($0) }
            let (_, count) = try dimensions(
                magic.dims, path: path,
                available: file.count * GzipReader.maximumRatio, compressed: true)
            let data = try reader.read(count)
            try reader.expectEnd()
            return NDArray(shape: magic.dims, bytes: data)
        }
        var offset = 0
        let magic = try readHeader(path) { n in
            guard offset + n <= file.count else {
                throw FileError(
                    path, "not an IDX file: \(file.count) bytes is too short for its header")
            }
            defer { offset += n }
            return Array(file[offset..<(offset + n)])
        }
        let (_, count) = try dimensions(
            magic.dims, path: path, available: file.count, compressed: false)
        guard file.count - offset == count else {
            throw FileError(
                path,
                "IDX header declares \(count) bytes of data (shape \(magic.dims)) but the file has \(file.count - offset)"
            )
        }
        return NDArray(shape: magic.dims, bytes: Array(file[offset...]))
    }

    /// Writes an unsigned-byte IDX file (uncompressed), atomically.
    public static func write(_ bytes: [UInt8], shape: [Int], to path: String) throws {
        precondition(shape.reduce(1, *) == bytes.count && shape.count >= 1 && shape.count <= 255)
        var out: [UInt8] = [0, 0, 0x08, UInt8(shape.count)]
        for d in shape {
            out += [
                UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF),
            ]
        }
        try AtomicFile.write(out + bytes, to: path)
    }

    private static func readHeader(_ path: String, _ take: (Int) throws -> [UInt8]) throws -> (
        type: UInt8, dims: [Int]
    ) {
        let magic = try take(4)
        guard magic[0] == 0, magic[1] == 0 else {
            throw FileError(
                path, "not an IDX file: bad magic number \(hex(magic)) (expected 00 00 08 0N)")
        }
        guard magic[2] == 0x08 else {
            let name = typeNames[magic[2]].map { " (\($0))" } ?? ""
            throw FileError(
                path,
                "IDX element type 0x\(String(magic[2], radix: 16))\(name) is not supported; only unsigned bytes (0x08)"
            )
        }
        guard magic[3] >= 1 else { throw FileError(path, "IDX header declares 0 dimensions") }
        let raw = try take(4 * Int(magic[3]))
        let dims = (0..<Int(magic[3])).map { (i: Int) -> Int in
            var d = 0
            for b in raw[(4 * i)..<(4 * i + 4)] { d = d << 8 | Int(b) }
            return d
        }
        return (magic[2], dims)
    }

    private static func dimensions(_ dims: [Int], path: String, available: Int, compressed: Bool)
        throws -> ([Int], Int)
    {
        var count = 1
        for d in dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= available else {
                throw FileError(
                    path,
                    "IDX header declares shape \(dims), more data than the \(compressed ? "compressed " : "")file can hold"
                )
            }
            count = product
        }
        return (dims, count)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format2: $0) }.joined(separator: " ")
    }
}

extension String {
    fileprivate init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
