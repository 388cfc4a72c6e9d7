#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file into memory.
/// - Throws: `FileError` naming `path` when it is missing, a directory, or unreadable.
public func readFileBytes(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    if fd < 0 { throw FileError(path, "cannot open: \(errnoText())") }
    defer { close(fd) }
    var info = stat()
    if fstat(fd, &info) != 0 { throw FileError(path, "cannot stat: \(errnoText())") }
    if (info.st_mode & S_IFMT) == S_IFDIR { throw FileError(path, "is a directory, not a file") }
    let size = Int(info.st_size)
    var bytes = [UInt8](repeating: 0, count: size)
    var offset = 0
    try bytes.withUnsafeMutableBytes { raw in
        while offset < size {
            let n = read(fd, raw.baseAddress! + offset, size - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path, "read failed: \(errnoText())")
            }
            if n == 0 { break }
            offset += n
        }
    }
    if offset != size { bytes.removeLast(size - offset) }
    return bytes
}
