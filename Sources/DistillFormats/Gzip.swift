import CZlib
import DistillCore

/// Streaming gzip decompression (zlib), with a hard bound on what it produces.
///
/// Concatenated gzip members are read as one stream, as `gunzip` does.
public final class GzipReader {
    /// Deflate cannot expand data by more than about 1032:1, so no honest stream gives more
    /// than this many bytes per compressed byte.
    public static let maximumRatio = 1032

    private let input: [UInt8]
    private let path: String
    private var stream = z_stream()
    private var inputOffset = 0
    private var finished = false

    /// Whether `bytes` start with the gzip magic number (1f 8b).
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    public init(_ bytes: [UInt8], path: String) throws {
        input = bytes
        self.path = path
        let status = inflateInit2_(
            &stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw FileError(path, "cannot start gzip decompression (zlib status \(status))")
        }
    }

    deinit { inflateEnd(&stream) }

    /// Decompresses exactly `count` more bytes.
    /// - Throws: `FileError` if the stream is corrupt or ends before `count` bytes.
    public func read(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var produced = 0
        try out.withUnsafeMutableBytes { raw in
            try input.withUnsafeBytes { source in
                while produced < count {
                    if finished {
                        throw FileError(
                            path,
                            "gzip data ends after \(produced) of the \(count) bytes expected (truncated file?)"
                        )
                    }
                    stream.next_in = UnsafeMutablePointer(
                        mutating: source.baseAddress!.assumingMemoryBound(to: UInt8.self)
                            + inputOffset)
                    stream.avail_in = UInt32(min(source.count - inputOffset, Int(UInt32.max)))
                    stream.next_out =
                        raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + produced
                    stream.avail_out = UInt32(min(count - produced, Int(UInt32.max)))
                    let before = Int(stream.avail_in)
                    let outBefore = Int(stream.avail_out)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    inputOffset += before - Int(stream.avail_in)
                    produced += outBefore - Int(stream.avail_out)
                    switch status {
                    case Z_OK:
                        if before == Int(stream.avail_in) && outBefore == Int(stream.avail_out) {
                            throw FileError(path, "gzip data is truncated")
                        }
                    case Z_STREAM_END:
                        // Another gzip member may follow.
                        if inputOffset < source.count
                            && GzipReader.isGzip(
                                Array(input[inputOffset..<min(inputOffset + 2, input.count)]))
                        {
                            inflateReset(&stream)
                        } else {
                            finished = true
                        }
                    case Z_BUF_ERROR:
                        if inputOffset >= source.count {
                            throw FileError(
                                path,
                                "gzip data ends after \(produced) of the \(count) bytes expected (truncated file?)"
                            )
                        }
                    default:
                        let reason = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                        throw FileError(path, "corrupt gzip data: \(reason)")
                    }
                }
            }
        }
        return out
    }

    /// Checks that nothing but the end of the stream follows what was read.
    public func expectEnd() throws {
        if finished { return }
        let extra = try? read(1)
        if extra != nil {
            throw FileError(path, "gzip data holds more bytes than the header declares")
        }
        if !finished { throw FileError(path, "gzip data is truncated (no end of stream)") }
    }
}
