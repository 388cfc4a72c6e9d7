#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that a crash never leaves a half-written file under the final name.
///
/// The bytes go to a temporary file in the same directory, are flushed to disk (`fsync`), and the
/// temporary file is renamed over the destination, which POSIX makes atomic.
public enum AtomicFile {
    /// Writes `bytes` to `path` atomically.
    /// - Throws: `FileError` naming `path` when the directory is missing or not writable.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { fd in
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        }
    }

    /// Writes `text` (UTF-8) to `path` atomically.
    public static func write(text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    /// Writes to `path` atomically; `body` writes through the file descriptor it is given
    /// (use `writeAll`). If `body` throws, the temporary file is removed and nothing is renamed.
    public static func write(to path: String, _ body: (Int32) throws -> Void) throws {
        let directory = parentDirectory(of: path)
        var info = stat()
        if stat(directory, &info) != 0 || (info.st_mode & S_IFMT) != S_IFDIR {
            throw FileError(path, "the directory \(directory) does not exist")
        }
        var template = Array("\(path).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 {
            throw FileError(path, "cannot create a file in \(directory): \(errnoText())")
        }
        let temporary = String(cString: template.map { UInt8(bitPattern: $0) })
        do {
            try body(fd)
            if fsync(fd) != 0 { throw FileError(path, "cannot flush to disk: \(errnoText())") }
            _ = fchmod(fd, 0o644)
            close(fd)
            if rename(temporary, path) != 0 {
                throw FileError(path, "cannot rename the temporary file into place: \(errnoText())")
            }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
    }

    /// Creates the directory `path` if it is not there (its parent must be).
    /// - Throws: `FileError` when it cannot be created or a file of that name is in the way.
    public static func createDirectory(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw FileError(path, "is a file, not a directory")
            }
            return
        }
        guard mkdir(path, 0o755) == 0 else {
            throw FileError(path, "cannot create the directory: \(errnoText())")
        }
    }

    /// Writes every byte of `bytes` to `fd`, retrying short writes.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path, "write failed: \(errnoText())")
            }
            offset += n
        }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }
}

/// The text of the current `errno`.
public func errnoText() -> String { String(cString: strerror(errno)) }

@inline(__always)
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
