import DistillCore
import DistillData
import DistillNN

/// A tagger's logits for every word of a set of sentences.
public enum TaggerInference {
    /// Inference-mode logits `[words, classes]`, one row per word in sentence order (the order of
    /// the CoNLL file): sentences in pieces of the model's context (`TaggedSentences.pieces`),
    /// `batchSize` pieces per forward pass.
    public static func logits(model: Model, sentences: TaggedSentences, batchSize: Int = 64)
        throws -> [Float]
    {
        guard sentences.words > 0 else { return [] }
        return try logits(
            model: model, sentences: sentences,
            batches: batches(model: model, sentences: sentences, batchSize: batchSize))
    }

    /// The pieces `logits` runs `model` on, their word features hashed once: a caller that scores
    /// the same sentences again (validation, every round) keeps them.
    public static func batches(model: Model, sentences: TaggedSentences, batchSize: Int = 64)
        throws -> TaggedBatches
    {
        try TaggedBatches(
            sentences: sentences, tags: [], context: model.inputShape[0], batchSize: batchSize,
            seed: 0, shuffle: false, buckets: model.featureBuckets ?? WordFeatures.buckets)
    }

    /// `logits(model:sentences:)` over `batches`, made by `batches(model:sentences:)` for these
    /// sentences and this model. Each batch's pieces are split over the cores as a training
    /// step's are (`TrainingStep.defaultParts(for:)`: an encoder's; a window tagger runs whole).
    public static func logits(model: Model, sentences: TaggedSentences, batches: TaggedBatches)
        throws -> [Float]
    {
        try logits(
            running: BatchSplit(model: model, maximumParts: TrainingStep.defaultParts(for: model)),
            sentences: sentences, batches: batches)
    }

    /// The same, the model run through `split` (a training step's, whose replicas and buffers a
    /// validation reuses).
    static func logits(
        running split: BatchSplit, sentences: TaggedSentences, batches: TaggedBatches
    )
        throws -> [Float]
    {
        let model = split.model
        let context = model.inputShape[0]
        precondition(batches.context == context)
        let c = model.classes
        var offsets: [Int] = []  // first word of each sentence among all words
        var total = 0
        for s in sentences.sentences {
            offsets.append(total)
            total += s.words.count
        }
        var out = [Float](repeating: 0, count: total * c)
        guard total > 0 else { return out }
        batches.start(epoch: 0)
        while let batch = batches.next() {
            let logits = split.forward(batch.inputs, mode: .inference)
            for (row, index) in batch.indices.enumerated() {
                let piece = batches.piece(index)
                let target = offsets[piece.sentence] + piece.start
                out.withUnsafeMutableBufferPointer { o in
                    (o.baseAddress! + target * c).update(
                        from: logits.pointer + row * context * c, count: piece.count * c)
                }
            }
        }
        return out
    }
}

extension TaggerInference {
    /// Teacher rows for `sentences`: the tagger's logits for each word put at the word's row
    /// (`TaggedSentences.firstRows`) of `[rows, classes]` (rows no sentence covers stay 0), the
    /// cache a distillation on those sentences gathers from.
    public static func teacherRows(model: Model, sentences: TaggedSentences, rows: Int) throws
        -> TeacherRows
    {
        let c = model.classes
        let logits = try TaggerInference.logits(model: model, sentences: sentences)
        var placed = [Float](repeating: 0, count: rows * c)
        var word = 0
        for (s, sentence) in sentences.sentences.enumerated() {
            let n = sentence.words.count * c
            placed.replaceSubrange(
                (sentences.firstRows[s] * c)..<(sentences.firstRows[s] * c + n),
                with: logits[(word * c)..<(word * c + n)])
            word += sentence.words.count
        }
        return .values(placed, width: c)
    }
}

/// How a tagger's predictions (the argmax of its logits, one per word) score against the gold
/// tags of the labelled sentences: `TagReport`'s per-tag table and, for BIO tags, entity scores.
/// Unlabelled sentences are skipped; a gold tag outside the model's tags is never predicted, so
/// it counts as wrong, and `unseenTags` reports it.
public struct TaggingEvaluation: Sendable {
    public let report: TagReport
    /// The predicted tags of every sentence (labelled or not), in order.
    public let predicted: [[String]]
    /// Gold tags the model does not have, with how many words carry each.
    public let unseenTags: [(tag: String, words: Int)]
    /// The words scored (those of labelled sentences).
    public let words: Int
    public let bio: Bool

    /// - Parameters:
    ///   - logits: `[words, tags.count]` in sentence order (`TaggerInference.logits`).
    ///   - tags: the model's tags, its classes in order.
    public init(logits: [Float], tags: [String], sentences: TaggedSentences, bio: Bool) {
        let c = tags.count
        var predicted: [[String]] = []
        var word = 0
        for s in sentences.sentences {
            predicted.append(
                (0..<s.words.count).map { i in
                    tags[indexOfMaximum(logits, start: (word + i) * c, count: c)]
                })
            word += s.words.count
        }
        let labelled = sentences.sentences.indices.filter { sentences.sentences[$0].tags != nil }
        let gold = labelled.map { sentences.sentences[$0].tags! }
        report = TagReport(gold: gold, predicted: labelled.map { predicted[$0] }, bio: bio)
        let known = Set(tags)
        var unseen: [String: Int] = [:]
        for tag in gold.joined() where !known.contains(tag) { unseen[tag, default: 0] += 1 }
        unseenTags = unseen.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        words = gold.reduce(0) { $0 + $1.count }
        self.predicted = predicted
        self.bio = bio
    }

    /// What validation maximises: entity F1 for BIO tags, token accuracy otherwise.
    public var validationScore: Double {
        bio ? report.entities?.f1 ?? 0 : report.tokenAccuracy
    }
}

extension Model {
    /// A tagger's tags, its classes in order (recorded in its metadata as `tags`, separated by
    /// spaces); nil for other models.
    public var tagNames: [String]? {
        guard isTagger, let text = metadata["tags"] else { return nil }
        let tags = text.split(separator: " ").map(String.init)
        return tags.count == classes ? tags : nil
    }
}
