import DistillCore
import DistillTestSupport
import Foundation
import XCTest

@testable import DistillData

/// Tagged sentences: word features, the split of long sentences, the row numbering of teacher
/// logits, batches with padding masked.
final class TaggingDataTests: XCTestCase {
    func features(_ word: String) -> [Float] {
        var ids = [Float](repeating: -1, count: WordFeatures.slots)
        ids.withUnsafeMutableBufferPointer { WordFeatures.write(word, to: $0.baseAddress!) }
        return ids
    }

    func testWordFeaturesShareLowerCaseAndAffixesButNotShape() {
        let (paris, lower, parade) = (features("Paris"), features("paris"), features("parade"))
        XCTAssertEqual(paris[0], lower[0])  // the word, lower-cased
        XCTAssertNotEqual(paris[1], lower[1])  // shape Xx against x
        XCTAssertEqual(lower[1], parade[1])
        XCTAssertEqual(Array(paris[2...3]), Array(parade[2...3]))  // prefixes "pa", "par"
        XCTAssertNotEqual(paris[4], parade[4])  // suffixes "is", "de"
        XCTAssertEqual(features("IBM")[1], features("NATO")[1])  // shape X
        XCTAssertEqual(features("3.14")[1], features("2.5")[1])  // shape d.d
        for word in ["a", "Paris", "", "naïve", "3.14"] {
            XCTAssertTrue(features(word).allSatisfy { $0 >= 1 && $0 < Float(WordFeatures.buckets) })
        }
        // The same slot text in two slots lands in two buckets.
        XCTAssertNotEqual(features("ab")[2], features("ab")[4])
        // A smaller table: ids below its size, never 0.
        var small = [Float](repeating: 0, count: WordFeatures.slots)
        for word in ["a", "Paris", "xylophone"] {
            small.withUnsafeMutableBufferPointer {
                WordFeatures.write(word, buckets: 16, to: $0.baseAddress!)
            }
            XCTAssertTrue(small.allSatisfy { $0 >= 1 && $0 < 16 })
        }
    }

    func writeDirectory(_ files: [String: String]) throws -> String {
        let dir = try makeTemporaryDirectory("distill-tagging")
        for (name, text) in files {
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        return dir
    }

    /// Rows are numbered over train.conll (validation sentences included), then
    /// unlabelled.conll; the validation split holds out whole sentences from the end.
    func testDatasetNumbersWordsAndSplitsSentences() throws {
        let dir = try writeDirectory([
            "train.conll": "A B-X\nb O\n\nc O\n\nD B-X\ne I-X\nf O\n\ng O\n",
            "test.conll": "h O\n",
            "unlabelled.conll": "i\nj\n\nk\n",
        ])
        let data = try TaggingDataset.load(dir, split: .count(1))
        XCTAssertEqual(data.tags, ["B-X", "I-X", "O"])
        XCTAssertTrue(data.isBIO)
        XCTAssertEqual(
            data.training.sentences.map(\.words),
            [["A", "b"], ["c"], ["D", "e", "f"], ["i", "j"], ["k"]])
        XCTAssertEqual(data.training.firstRows, [0, 2, 3, 7, 9])
        XCTAssertEqual(data.validation.sentences.map(\.words), [["g"]])
        XCTAssertEqual(data.validation.firstRows, [6])
        XCTAssertEqual(data.teacherRows, 10)
        // Every sentence in teacher-row order, the validation sentence included.
        XCTAssertEqual(data.rowOrder.firstRows, [0, 2, 3, 6, 7, 9])
        XCTAssertEqual(data.rowOrder.sentences[3].words, ["g"])
        XCTAssertEqual(TaggedSentences(consecutive: data.test.sentences, from: 4).firstRows, [4])
        XCTAssertEqual(data.training.labelledSentences, 3)
        XCTAssertEqual(data.training.keepingLabels(forFirst: 1).labelledSentences, 1)
        XCTAssertEqual(data.training.labelledOnly(first: 2).firstRows, [0, 2])
        // Nothing labelled: a clear error naming the file.
        let unlabelled = try writeDirectory(["train.conll": "a _\nb _\n", "test.conll": "a O\n"])
        XCTAssertThrowsError(try TaggingDataset.load(unlabelled)) {
            XCTAssertTrue("\($0)".contains("train.conll: no labelled sentence"), "\($0)")
        }
    }

    func testLongSentencesSplitIntoPiecesNeverDropped() {
        let words = (0..<10).map { "w\($0)" }
        let sentences = TaggedSentences(
            sentences: [
                CoNLLFile.Sentence(words: words, tags: nil, lines: Array(1...10)),
                CoNLLFile.Sentence(words: ["x"], tags: nil, lines: [12]),
            ], firstRows: [0, 10])
        let pieces = sentences.pieces(context: 4)
        XCTAssertEqual(pieces.map(\.sentence), [0, 0, 0, 1])
        XCTAssertEqual(pieces.map(\.start), [0, 4, 8, 0])
        XCTAssertEqual(pieces.map(\.count), [4, 4, 2, 1])
    }

    /// A batch row is a piece, padded at its end: padding has ids 0, label -1 and mask false;
    /// unlabelled words have label -1 and mask true; teacher rows follow the numbering.
    func testBatchesMaskPaddingAndGatherTeacherRows() throws {
        let sentences = TaggedSentences(
            sentences: [
                CoNLLFile.Sentence(
                    words: ["a", "b", "c"], tags: ["O", "B-X", "Z"], lines: [1, 2, 3]),
                CoNLLFile.Sentence(words: ["d"], tags: nil, lines: [5]),
            ], firstRows: [0, 5])
        // Teacher rows: row r is [r, -r].
        let rows = TeacherRows.values((0..<6).flatMap { [Float($0), -Float($0)] }, width: 2)
        let batches = try TaggedBatches(
            sentences: sentences, tags: ["B-X", "O"], context: 2, batchSize: 8, seed: 1,
            shuffle: false, teacherRows: rows)
        batches.start(epoch: 0)
        let batch = try XCTUnwrap(batches.next())
        XCTAssertNil(batches.next())
        XCTAssertEqual(batch.inputs.shape, [3, 2, WordFeatures.slots])  // a b | c _ | d _
        XCTAssertEqual(batch.labels, [1, 0, -1, -1, -1, -1])  // Z is not a tag: -1
        XCTAssertEqual(batch.mask, [true, true, true, false, true, false])
        let k = WordFeatures.slots
        XCTAssertEqual(
            Array(batch.inputs.values[(3 * k)..<(4 * k)]), [Float](repeating: 0, count: k))
        XCTAssertEqual(Array(batch.inputs.values[(2 * k)..<(3 * k)]), features("c"))
        let teacher = try XCTUnwrap(batch.teacher).values
        // Words a, b, c at rows 0, 1, 2; d at row 5; padding repeats the batch's first word's row.
        XCTAssertEqual(teacher, [0, 0, 1, -1, 2, -2, 0, 0, 5, -5, 0, 0])
        // Too few teacher rows: refused.
        XCTAssertThrowsError(
            try TaggedBatches(
                sentences: sentences, tags: ["O"], context: 2, batchSize: 8, seed: 1,
                teacherRows: .values([Float](repeating: 0, count: 10), width: 2)))
        // Shuffled epochs are a permutation of the pieces, the same for the same seed.
        let shuffled = try TaggedBatches(
            sentences: sentences, tags: ["O"], context: 2, batchSize: 1, seed: 7)
        func epoch(_ e: Int) -> [Int] {
            shuffled.start(epoch: e)
            var order: [Int] = []
            while let b = shuffled.next() { order += b.indices }
            return order
        }
        XCTAssertEqual(epoch(3).sorted(), [0, 1, 2])
        XCTAssertEqual(epoch(3), epoch(3))
    }
}
