import DistillCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `[N, C]` floating-point matrix stored as one NPY file or as a directory of NPY shards
/// (`*.npy` in name order, each `[n_i, C]`, float16, float32 or float64 in either byte order),
/// memory-mapped: rows are read when asked for, so the matrix may be larger than memory.
///
/// This is how teacher logits computed elsewhere (PyTorch, JAX, Spark, Ray) reach a student:
/// row `i` belongs to training example `i` of the data, in file order.
// immutable after init; the mappings are read-only
public final class NPYShards: @unchecked Sendable {
    struct Shard {
        let path: String
        let base: UnsafeMutableRawPointer
        let length: Int
        let header: NPY.Header
        let firstRow: Int
        var rows: Int { header.shape[0] }
    }

    /// The shard files, in the order their rows are numbered.
    public var paths: [String] { shards.map(\.path) }
    public let rows: Int
    public let columns: Int
    private let shards: [Shard]

    /// Maps `path`: an NPY file, or a directory whose `*.npy` files are taken in name order.
    /// - Parameter integers: take integer arrays (int32, int64, uint8) instead of floating-point
    ///   ones (class indices; read back as Float, exact below 2^24).
    /// - Throws: `FileError` naming the file and the problem (not 2-D, not of the expected kind,
    ///   a column count different from the first shard's, a size that does not match the header).
    public init(_ path: String, integers: Bool = false) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileError(path, "no such file or directory")
        }
        let files: [String]
        if isDirectory.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw FileError(path, "cannot list the directory")
            }
            files = names.filter { $0.hasSuffix(".npy") }.sorted().map { path + "/" + $0 }
            guard !files.isEmpty else { throw FileError(path, "the directory holds no .npy files") }
        } else {
            files = [path]
        }
        var shards: [Shard] = []
        var rows = 0
        var columns: Int?
        do {
            for file in files {
                let shard = try NPYShards.map(file, firstRow: rows)
                shards.append(shard)  // appended first, so a later failure unmaps it
                let shape = shard.header.shape
                guard shape.count == 2 else {
                    throw FileError(
                        file, "has shape \(shape); a logits shard is 2-D, [rows, classes]")
                }
                guard shard.header.type.isFloatingPoint != integers else {
                    throw FileError(
                        file,
                        integers
                            ? "holds \(shard.header.type.name); class indices are int32, int64 or uint8"
                            : "holds \(shard.header.type.name); logits are float16, float32 or float64"
                    )
                }
                if let c = columns, c != shape[1] {
                    throw FileError(
                        file,
                        "has \(shape[1]) columns; \(files[0]) has \(c) (every shard has the same classes)"
                    )
                }
                columns = shape[1]
                rows += shape[0]
            }
        } catch {
            for s in shards { munmap(s.base, s.length) }
            throw error
        }
        self.shards = shards
        self.rows = rows
        self.columns = columns ?? 0
    }

    deinit {
        for s in shards { munmap(s.base, s.length) }
    }

    private static func map(_ path: String, firstRow: Int) throws -> Shard {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw FileError(path, "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path, "cannot read its size") }
        let length = Int(info.st_size)
        guard length > 0 else { throw FileError(path, "not a valid NPY file: it is empty") }
        guard let base = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw FileError(path, "cannot map (\(String(cString: strerror(errno))))")
        }
        do {
            let header = try NPY.parseHeader(
                UnsafeRawBufferPointer(start: base, count: length), path: path)
            return Shard(path: path, base: base, length: length, header: header, firstRow: firstRow)
        } catch {
            munmap(base, length)
            throw error
        }
    }

    /// Copies row `row` (in `0..<rows`) to `destination` as Float (`columns` values).
    public func copyRow(_ row: Int, to destination: UnsafeMutablePointer<Float>) {
        precondition(row >= 0 && row < rows, "row \(row) outside 0..<\(rows)")
        // The last shard whose first row is <= row.
        var lo = 0
        var hi = shards.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if shards[mid].firstRow <= row { lo = mid } else { hi = mid - 1 }
        }
        let shard = shards[lo]
        let h = shard.header
        let start =
            UnsafeRawPointer(shard.base) + h.dataOffset + (row - shard.firstRow) * columns
            * h.type.size
        if h.type == .float32 && !h.bigEndian && UInt32(1).littleEndian == 1 {
            UnsafeMutableRawPointer(destination).copyMemory(from: start, byteCount: columns * 4)
        } else if h.type.isFloatingPoint {
            for c in 0..<columns {
                destination[c] = Float(
                    NPY.floatingPoint(start + c * h.type.size, type: h.type, bigEndian: h.bigEndian)
                )
            }
        } else {
            for c in 0..<columns {
                destination[c] = Float(
                    NPY.integer(start + c * h.type.size, type: h.type, bigEndian: h.bigEndian))
            }
        }
    }
}
