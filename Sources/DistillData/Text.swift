import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file's bytes, memory-mapped read-only: a 1 GB text needs no 1 GB of memory of its own.
// immutable after init; the mapping is read-only
public final class MappedBytes: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeMutableRawPointer

    /// - Throws: `FileError` naming `path` when it is missing, unreadable or empty.
    public init(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileError(path, "cannot open: \(errnoText())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path, "cannot read its size") }
        guard (info.st_mode & S_IFMT) != S_IFDIR else {
            throw FileError(path, "is a directory, not a file")
        }
        guard info.st_size > 0 else {
            throw FileError(path, "is empty; a text split needs at least 2 bytes")
        }
        guard let base = mmap(nil, Int(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0),
            base != MAP_FAILED
        else {
            throw FileError(path, "cannot map: \(errnoText())")
        }
        self.path = path
        self.count = Int(info.st_size)
        self.base = base
    }

    deinit { munmap(base, count) }

    /// The byte at `offset`.
    @inline(__always) public subscript(offset: Int) -> UInt8 {
        base.load(fromByteOffset: offset, as: UInt8.self)
    }
}

/// A contiguous run of a text file's bytes: a split for language modelling over bytes (256
/// classes; any bytes are valid text).
public struct TextSplit: Sendable {
    public let bytes: MappedBytes
    public let range: Range<Int>

    public init(_ bytes: MappedBytes, range: Range<Int>? = nil) {
        self.bytes = bytes
        self.range = range ?? 0..<bytes.count
    }

    /// The number of bytes.
    public var count: Int { range.count }

    /// The byte at position `i` of the split.
    @inline(__always) public subscript(i: Int) -> UInt8 { bytes[range.lowerBound + i] }

    /// Predictions in the split: every byte after the first.
    public var predictions: Int { max(count - 1, 0) }

    /// The evaluation windows: consecutive windows of up to `context` predictions covering the
    /// split, each byte after the first predicted once. Window `w` reads bytes
    /// `[w C, min(w C + C, count - 1))` and predicts the byte after each; so a window's first
    /// prediction sees one byte of context, its last up to C.
    public func evaluationWindows(context: Int) -> [Range<Int>] {
        stride(from: 0, to: predictions, by: context).map { $0..<min($0 + context, predictions) }
    }
}

/// A language-modelling data set over bytes: `train.txt`, `test.txt` and, when present,
/// `valid.txt`; without it the validation split is the end of `train.txt`.
public struct TextDataset: Sendable {
    public let directory: String
    public let training: TextSplit
    public let validation: TextSplit
    public let test: TextSplit

    /// The vocabulary: bytes.
    public static let classes = 256

    /// Whether `directory` holds `train.txt`.
    public static func holdsText(_ directory: String) -> Bool {
        var info = stat()
        return stat(directory + "/train.txt", &info) == 0
    }

    /// Maps the files of `directory`.
    /// - Parameter split: the bytes held out from the end of `train.txt` when there is no
    ///   `valid.txt` (a count of bytes or a fraction; automatic: 5,000 or 10%, the smaller).
    /// - Throws: `FileError` naming a missing or empty file, `DataError` when the split leaves
    ///   too little training text.
    public static func load(_ directory: String, split: ValidationSplit = .automatic) throws
        -> TextDataset
    {
        let train = try MappedBytes(directory + "/train.txt")
        let test = try MappedBytes(directory + "/test.txt")
        let validation: TextSplit
        let training: TextSplit
        var info = stat()
        if stat(directory + "/valid.txt", &info) == 0 {
            validation = TextSplit(try MappedBytes(directory + "/valid.txt"))
            training = TextSplit(train)
        } else {
            let held = split.size(forTrainingCount: train.count)
            guard held >= 2, train.count - held >= 2 else {
                throw DataError(
                    "\(directory)/train.txt: \(train.count) bytes cannot give a validation split of \(held) bytes and training text (at least 2 bytes each)"
                )
            }
            training = TextSplit(train, range: 0..<(train.count - held))
            validation = TextSplit(train, range: (train.count - held)..<train.count)
        }
        return TextDataset(
            directory: directory, training: training, validation: validation, test: TextSplit(test))
    }
}

/// Training windows of a text split: `context` bytes at seeded random offsets, each with the
/// `context` bytes that follow them as next-byte labels.
///
/// A batch is `inputs [B, C]` (bytes as Float ids) and `labels [B C]`, the byte after each input
/// byte, row by row. An epoch is `predictions / C` windows (as many predictions as the split
/// has); window `k` of epoch `e` starts at a uniform offset drawn from `(seed, e, k)`, so batches
/// are regenerated exactly after a restart.
public final class TextWindows: BatchSource {
    public let split: TextSplit
    public let context: Int
    public let batchSize: Int
    public let seed: UInt64
    public let windowsPerEpoch: Int
    private var epoch = 0
    private var window = 0
    private var inputs: Tensor
    private var labels: [Int32]
    private var offsets: [Int]

    /// - Throws: `DataError` when the split is shorter than a window and its next byte.
    /// Cached teacher rows, one per predicted position of the whole file the split is part of
    /// (row `p` predicts byte `p + 1` of the file), gathered for every position of a window; nil
    /// for none.
    public let teacherRows: TeacherRows?
    private var teacher = Tensor(zeros: [0])

    /// - Parameter teacherRows: see `teacherRows`; at least as many rows as the file has
    ///   predictions up to the split's end.
    public init(
        split: TextSplit, context: Int, batchSize: Int, seed: UInt64,
        teacherRows: TeacherRows? = nil
    ) throws {
        guard context >= 1, batchSize >= 1 else {
            throw DataError(
                "the context and the batch size must be at least 1, got \(context) and \(batchSize)"
            )
        }
        guard split.count > context else {
            throw DataError(
                "\(split.bytes.path): the text has \(split.count) bytes; a window of context \(context) needs \(context + 1)"
            )
        }
        if let teacherRows, teacherRows.count < split.range.upperBound - 1 {
            throw DataError(
                "teacher rows cover \(teacherRows.count) positions; the text needs one per byte of \(split.bytes.path) but the last (\(split.bytes.count - 1))"
            )
        }
        (self.split, self.context, self.batchSize, self.seed) = (split, context, batchSize, seed)
        self.teacherRows = teacherRows
        windowsPerEpoch = max(1, split.predictions / context)
        let rows = min(batchSize, windowsPerEpoch)
        inputs = Tensor(zeros: [rows, context])
        labels = [Int32](repeating: 0, count: rows * context)
        offsets = [Int](repeating: 0, count: rows)
    }

    public var batchesPerEpoch: Int { (windowsPerEpoch + batchSize - 1) / batchSize }

    public func start(epoch: Int) {
        self.epoch = epoch
        window = 0
    }

    public func next() -> Batch? {
        guard window < windowsPerEpoch else { return nil }
        let n = min(batchSize, windowsPerEpoch - window)
        inputs.resize(to: [n, context])
        let span = UInt64(split.count - context)  // offsets 0...(count - context - 1)
        for row in 0..<n {
            var generator = SeededGenerator(
                seed: mix(seed, UInt64(epoch), UInt64(window + row) &+ 0x7E47))
            let offset = Int(generator.next() % span)
            offsets[row] = offset
            let x = inputs.pointer + row * context
            for i in 0..<context {
                x[i] = Float(split[offset + i])
                labels[row * context + i] = Int32(split[offset + i + 1])
            }
        }
        var teacherBatch: Tensor?
        if let rows = teacherRows {
            teacher.resize(to: [n * context, rows.width])
            for row in 0..<n {
                for i in 0..<context {
                    let position = split.range.lowerBound + offsets[row] + i
                    rows.copyRow(position, to: teacher.pointer + (row * context + i) * rows.width)
                }
            }
            teacherBatch = teacher
        }
        window += n
        return Batch(
            inputs: inputs, labels: Array(labels[0..<(n * context)]), teacher: teacherBatch,
            indices: offsets[0..<n])
    }
}
