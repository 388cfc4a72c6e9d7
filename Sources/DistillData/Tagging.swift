import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sentences of a token-labelling split, each with the teacher row of its first word.
public struct TaggedSentences: Sendable {
    public let sentences: [CoNLLFile.Sentence]
    /// The teacher row of each sentence's first word (`TaggingDataset`'s numbering); the other
    /// words follow it.
    public let firstRows: [Int]

    public init(sentences: [CoNLLFile.Sentence], firstRows: [Int]) {
        precondition(sentences.count == firstRows.count)
        (self.sentences, self.firstRows) = (sentences, firstRows)
    }

    /// The sentences of one file (or of files one after another), their words numbered in order
    /// from `firstRow`.
    public init(consecutive sentences: [CoNLLFile.Sentence], from firstRow: Int = 0) {
        var row = firstRow
        self.init(
            sentences: sentences,
            firstRows: sentences.map { s in
                defer { row += s.words.count }
                return row
            })
    }

    /// The number of words.
    public var words: Int { sentences.reduce(0) { $0 + $1.words.count } }

    /// The number of labelled sentences.
    public var labelledSentences: Int { sentences.count { $0.tags != nil } }

    /// The first `n` labelled sentences keep their tags; the others become unlabelled.
    public func keepingLabels(forFirst n: Int) -> TaggedSentences {
        var seen = 0
        let kept = sentences.map { s -> CoNLLFile.Sentence in
            guard s.tags != nil else { return s }
            seen += 1
            return seen <= n ? s : CoNLLFile.Sentence(words: s.words, tags: nil, lines: s.lines)
        }
        return TaggedSentences(sentences: kept, firstRows: firstRows)
    }

    /// The first `n` labelled sentences alone (no unlabelled ones).
    public func labelledOnly(first n: Int) -> TaggedSentences {
        let picked = sentences.indices.filter { sentences[$0].tags != nil }.prefix(n)
        return TaggedSentences(
            sentences: picked.map { sentences[$0] }, firstRows: picked.map { firstRows[$0] })
    }

    /// The sentences as pieces of at most `context` words: a longer sentence is cut into
    /// consecutive pieces (the last may be shorter), each tagged on its own; none is dropped.
    public func pieces(context: Int) -> [(sentence: Int, start: Int, count: Int)] {
        var pieces: [(Int, Int, Int)] = []
        for (s, sentence) in sentences.enumerated() {
            for start in stride(from: 0, to: sentence.words.count, by: context) {
                pieces.append((s, start, min(context, sentence.words.count - start)))
            }
        }
        return pieces
    }
}

/// A token-labelling data set in the CoNLL layout (`CoNLLFile`): `train.conll`, `test.conll`,
/// optional `valid.conll` (else `--validation-split` holds out whole sentences from the end of
/// `train.conll`) and optional `unlabelled.conll` (words only, one per line: every sentence
/// trains on the teacher's soft targets alone).
///
/// The tag set is the training file's (sorted by name); `isBIO` when its tags are BIO (IOB1
/// converted to IOB2). Teacher rows are numbered by word: `train.conll`'s words in file order
/// (validation sentences included), then `unlabelled.conll`'s.
public struct TaggingDataset: Sendable {
    public let directory: String
    public let training: TaggedSentences
    public let validation: TaggedSentences
    public let test: TaggedSentences
    public let tags: [String]
    public let isBIO: Bool
    /// Every sentence of `train.conll` (validation sentences included), then of
    /// `unlabelled.conll`, in file order: the order of teacher rows, one per word.
    public let rowOrder: TaggedSentences
    /// Teacher rows the training files need: the words of `train.conll` and `unlabelled.conll`.
    public var teacherRows: Int { rowOrder.words }
    /// IOB1 tags turned into `B-` (in all files).
    public let convertedFromIOB1: Int

    /// Whether `directory` holds `train.conll`.
    public static func holdsCoNLL(_ directory: String) -> Bool {
        var info = stat()
        return stat(directory + "/train.conll", &info) == 0
    }

    /// Reads the files of `directory`.
    /// - Throws: `FileError` for a missing or malformed file (naming it and the line), `DataError`
    ///   when the training file has no labelled sentence or the split leaves no training sentence.
    public static func load(_ directory: String, split: ValidationSplit = .automatic) throws
        -> TaggingDataset
    {
        func exists(_ name: String) -> Bool {
            var info = stat()
            return stat(directory + "/" + name, &info) == 0
        }
        let train = try CoNLLFile(path: directory + "/train.conll")
        let test = try CoNLLFile(path: directory + "/test.conll")
        let tags = Set(train.sentences.compactMap(\.tags).joined()).sorted()
        guard !tags.isEmpty else {
            throw DataError(
                "\(train.path): no labelled sentence (a sentence whose tags are all _ is unlabelled)"
            )
        }
        let all = TaggedSentences(consecutive: train.sentences)
        var training = all
        var validation: TaggedSentences
        var converted = train.convertedFromIOB1 + test.convertedFromIOB1
        if exists("valid.conll") {
            let valid = try CoNLLFile(path: directory + "/valid.conll")
            converted += valid.convertedFromIOB1
            validation = TaggedSentences(consecutive: valid.sentences)
        } else {
            let held = split.size(forTrainingCount: all.sentences.count)
            let kept = all.sentences.count - held
            guard kept >= 1 else {
                throw DataError(
                    "\(train.path): \(all.sentences.count) sentences cannot give a validation split of \(held) sentences and training sentences"
                )
            }
            training = TaggedSentences(
                sentences: Array(all.sentences[..<kept]), firstRows: Array(all.firstRows[..<kept]))
            validation = TaggedSentences(
                sentences: Array(all.sentences[kept...]), firstRows: Array(all.firstRows[kept...]))
        }
        var rowOrder = all
        if exists("unlabelled.conll") {
            let extra = TaggedSentences(
                consecutive: try CoNLLFile(path: directory + "/unlabelled.conll", labelled: false)
                    .sentences,
                from: all.words)
            training = TaggedSentences(
                sentences: training.sentences + extra.sentences,
                firstRows: training.firstRows + extra.firstRows)
            rowOrder = TaggedSentences(
                sentences: all.sentences + extra.sentences,
                firstRows: all.firstRows + extra.firstRows)
        }
        return TaggingDataset(
            directory: directory, training: training, validation: validation,
            test: TaggedSentences(consecutive: test.sentences), tags: tags, isBIO: train.isBIO,
            rowOrder: rowOrder, convertedFromIOB1: converted)
    }
}

/// Batches of sentence pieces for a tagger: each piece (`TaggedSentences.pieces`) is one row of
/// `context` positions, padded at its end; a seeded permutation of the pieces per epoch.
///
/// A batch is `inputs [B, context, WordFeatures.slots]` (feature ids; padding all 0), `labels
/// [B context]` (the tag's index in `tags`, or -1 for padding, unlabelled sentences and tags
/// outside `tags`), `mask [B context]` (false for padding: it counts for nothing in any loss),
/// and with teacher rows `teacher [B context, width]` (a padding position repeats the batch's
/// first word's row, which the mask then ignores).
public final class TaggedBatches: BatchSource {
    public let context: Int
    public let batchSize: Int
    public let seed: UInt64
    public let shuffle: Bool
    public let teacherRows: TeacherRows?
    private let pieces: [(sentence: Int, start: Int, count: Int)]
    private let features: [[Float]]  // per sentence, words x slots
    private let labels: [[Int32]]  // per sentence
    private let firstRows: [Int]
    private var order: [Int]
    private var position = 0
    private var inputs: Tensor
    private var batchLabels: [Int32] = []
    private var mask: [Bool] = []
    private var teacher = Tensor(zeros: [0])
    private var pieceIndices: [Int] = []

    /// - Parameter buckets: the size of the model's feature table (`WordFeatures.write`).
    /// - Throws: `DataError` when there is no sentence, or the teacher rows are too few.
    public init(
        sentences: TaggedSentences, tags: [String], context: Int, batchSize: Int, seed: UInt64,
        shuffle: Bool = true, teacherRows: TeacherRows? = nil,
        buckets: Int = WordFeatures.buckets
    ) throws {
        guard context >= 1, batchSize >= 1 else {
            throw DataError(
                "the context and the batch size must be at least 1, got \(context) and \(batchSize)"
            )
        }
        guard !sentences.sentences.isEmpty else { throw DataError("there are no sentences") }
        if let teacherRows,
            let last = sentences.sentences.indices.last,
            teacherRows.count < sentences.firstRows[last] + sentences.sentences[last].words.count
        {
            throw DataError(
                "teacher rows cover \(teacherRows.count) words; the training sentences need \(sentences.firstRows[last] + sentences.sentences[last].words.count)"
            )
        }
        (self.context, self.batchSize, self.seed, self.shuffle) = (
            context, batchSize, seed, shuffle
        )
        self.teacherRows = teacherRows
        pieces = sentences.pieces(context: context)
        let index = Dictionary(uniqueKeysWithValues: tags.enumerated().map { ($1, Int32($0)) })
        features = sentences.sentences.map {
            TaggedBatches.features(of: $0.words, buckets: buckets)
        }
        labels = sentences.sentences.map { s in
            s.tags.map { $0.map { index[$0] ?? -1 } }
                ?? [Int32](repeating: -1, count: s.words.count)
        }
        firstRows = sentences.firstRows
        order = Array(pieces.indices)
        inputs = Tensor(zeros: [min(batchSize, pieces.count), context, WordFeatures.slots])
    }

    /// The feature ids of `words`, word by word (`WordFeatures`).
    public static func features(of words: [String], buckets: Int = WordFeatures.buckets)
        -> [Float]
    {
        var ids = [Float](repeating: 0, count: words.count * WordFeatures.slots)
        ids.withUnsafeMutableBufferPointer { p in
            for (i, word) in words.enumerated() {
                WordFeatures.write(
                    word, buckets: buckets, to: p.baseAddress! + i * WordFeatures.slots)
            }
        }
        return ids
    }

    /// The number of rows (pieces) in an epoch.
    public var pieceCount: Int { pieces.count }

    public var batchesPerEpoch: Int { (pieces.count + batchSize - 1) / batchSize }

    public func start(epoch: Int) {
        order = Array(pieces.indices)
        if shuffle {
            var generator = SeededGenerator(seed: mix(seed, UInt64(epoch), 0x7A66))
            order.shuffle(using: &generator)
        }
        position = 0
    }

    /// Where the words of a batch row came from: the piece's sentence and first word.
    public func piece(_ i: Int) -> (sentence: Int, start: Int, count: Int) { pieces[i] }

    public func next() -> Batch? {
        guard position < pieces.count else { return nil }
        let n = min(batchSize, pieces.count - position)
        let k = WordFeatures.slots
        inputs.resize(to: [n, context, k])
        inputs.pointer.update(repeating: 0, count: n * context * k)
        batchLabels = [Int32](repeating: -1, count: n * context)
        mask = [Bool](repeating: false, count: n * context)
        pieceIndices = Array(order[position..<(position + n)])
        if let rows = teacherRows { teacher.resize(to: [n * context, rows.width]) }
        let firstWordRow: Int = {
            let p = pieces[pieceIndices[0]]
            return firstRows[p.sentence] + p.start
        }()
        for (row, pieceIndex) in pieceIndices.enumerated() {
            let p = pieces[pieceIndex]
            features[p.sentence].withUnsafeBufferPointer { f in
                (inputs.pointer + row * context * k).update(
                    from: f.baseAddress! + p.start * k, count: p.count * k)
            }
            for i in 0..<p.count {
                batchLabels[row * context + i] = labels[p.sentence][p.start + i]
                mask[row * context + i] = true
            }
            if let rows = teacherRows {
                for i in 0..<context {
                    let source = i < p.count ? firstRows[p.sentence] + p.start + i : firstWordRow
                    rows.copyRow(source, to: teacher.pointer + (row * context + i) * rows.width)
                }
            }
        }
        position += n
        return Batch(
            inputs: inputs, labels: batchLabels, teacher: teacherRows == nil ? nil : teacher,
            indices: pieceIndices[...], mask: mask)
    }
}
