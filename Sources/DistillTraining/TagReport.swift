import DistillData

/// Precision, recall and F1 of one class (a tag or an entity type) and how often it is true.
public struct TagScore: Codable, Equatable, Sendable {
    public let precision: Double
    public let recall: Double
    public let f1: Double
    public let support: Int

    /// From counts: `precision = correct / predicted`, `recall = correct / support`, F1 their
    /// harmonic mean; 0 where a denominator is 0 (as scikit-learn and seqeval report them).
    public init(correct: Int, predicted: Int, support: Int) {
        precision = predicted > 0 ? Double(correct) / Double(predicted) : 0
        recall = support > 0 ? Double(correct) / Double(support) : 0
        f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
        self.support = support
    }

    init(precision: Double, recall: Double, f1: Double, support: Int) {
        (self.precision, self.recall, self.f1, self.support) = (precision, recall, f1, support)
    }
}

/// How predicted tags score against gold tags, sentence by sentence: per tag in the layout of
/// scikit-learn's `classification_report` (the articles' table: every tag that is gold or
/// predicted, then micro, macro and support-weighted averages), and for BIO tags per entity as
/// conlleval and seqeval's default mode count spans (`entitySpans`: a predicted entity is correct
/// only when its type and both ends match a gold one).
public struct TagReport: Sendable {
    /// Each tag, in name order.
    public let perTag: [(name: String, score: TagScore)]
    public let micro: TagScore, macro: TagScore, weighted: TagScore
    /// The fraction of words whose predicted tag is the gold one.
    public let tokenAccuracy: Double
    /// Each entity type, in name order, and all entities together (micro); nil unless BIO.
    public let perEntity: [(name: String, score: TagScore)]?
    public let entities: TagScore?

    /// - Precondition: `gold` and `predicted` hold the same number of sentences, each of the same
    ///   length.
    public init(gold: [[String]], predicted: [[String]], bio: Bool) {
        precondition(
            gold.count == predicted.count
                && zip(gold, predicted).allSatisfy { $0.count == $1.count })
        var correct: [String: Int] = [:]
        var predictedCount: [String: Int] = [:]
        var support: [String: Int] = [:]
        var right = 0
        var words = 0
        for (g, p) in zip(gold, predicted) {
            for (a, b) in zip(g, p) {
                support[a, default: 0] += 1
                predictedCount[b, default: 0] += 1
                if a == b {
                    correct[a, default: 0] += 1
                    right += 1
                }
                words += 1
            }
        }
        let names = Set(support.keys).union(predictedCount.keys).sorted()
        perTag = names.map { name in
            (
                name,
                TagScore(
                    correct: correct[name] ?? 0, predicted: predictedCount[name] ?? 0,
                    support: support[name] ?? 0)
            )
        }
        tokenAccuracy = words > 0 ? Double(right) / Double(words) : 0
        micro = TagScore(correct: right, predicted: words, support: words)
        (macro, weighted) = TagReport.averages(perTag.map(\.score))
        guard bio else {
            (perEntity, entities) = (nil, nil)
            return
        }
        var spanCorrect: [Substring: Int] = [:]
        var spanPredicted: [Substring: Int] = [:]
        var spanSupport: [Substring: Int] = [:]
        for (g, p) in zip(gold, predicted) {
            let truth = Set(entitySpans(g))
            for span in truth { spanSupport[span.type, default: 0] += 1 }
            for span in entitySpans(p) {
                spanPredicted[span.type, default: 0] += 1
                if truth.contains(span) { spanCorrect[span.type, default: 0] += 1 }
            }
        }
        let types = Set(spanSupport.keys).union(spanPredicted.keys).sorted()
        perEntity = types.map { type in
            (
                String(type),
                TagScore(
                    correct: spanCorrect[type] ?? 0, predicted: spanPredicted[type] ?? 0,
                    support: spanSupport[type] ?? 0)
            )
        }
        entities = TagScore(
            correct: spanCorrect.values.reduce(0, +), predicted: spanPredicted.values.reduce(0, +),
            support: spanSupport.values.reduce(0, +))
    }

    /// The unweighted and the support-weighted means of `scores`.
    static func averages(_ scores: [TagScore]) -> (macro: TagScore, weighted: TagScore) {
        let total = scores.reduce(0) { $0 + $1.support }
        func mean(_ weight: (TagScore) -> Double, _ field: (TagScore) -> Double) -> Double {
            let w = scores.reduce(0.0) { $0 + weight($1) }
            return w > 0 ? scores.reduce(0.0) { $0 + weight($1) * field($1) } / w : 0
        }
        let even: (TagScore) -> Double = { _ in 1 }
        let bySupport: (TagScore) -> Double = { Double($0.support) }
        return (
            TagScore(
                precision: mean(even, \.precision), recall: mean(even, \.recall),
                f1: mean(even, \.f1), support: total),
            TagScore(
                precision: mean(bySupport, \.precision), recall: mean(bySupport, \.recall),
                f1: mean(bySupport, \.f1), support: total)
        )
    }
}
