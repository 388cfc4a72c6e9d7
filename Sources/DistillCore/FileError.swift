/// An error about one file: which file, and what is wrong with it, in words a user can act on.
public struct FileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path as the user gave it.
    public let path: String
    /// What is wrong, e.g. "header length 4096 exceeds the file size (100 bytes)".
    public let problem: String

    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}
