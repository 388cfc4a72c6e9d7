import DistillCore
import DistillData
import DistillTestSupport
import Foundation
import XCTest

@testable import DistillTraining

/// CoNLL files and the tag and entity scores, on examples worked by hand.
final class TagReportTests: XCTestCase {
    func write(_ text: String, _ name: String = "train.conll") throws -> String {
        let path = try makeTemporaryDirectory("distill-conll") + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// -DOCSTART- skipped, blank lines end sentences, the tag is the last column, a sentence of
    /// `_` tags is unlabelled, IOB1's entity-opening I- tags become B-.
    func testReadsSentencesAndConvertsIOB1() throws {
        let file = try CoNLLFile(
            path: try write(
                """
                -DOCSTART- -X- O O

                EU NNP I-ORG
                rejects VBZ O
                German JJ I-MISC
                call NN O

                Peter NNP I-PER
                Blackburn NNP I-PER

                the DT _
                end NN _
                """))
        XCTAssertTrue(file.isBIO)
        XCTAssertEqual(file.sentences.count, 3)
        XCTAssertEqual(file.sentences[0].words, ["EU", "rejects", "German", "call"])
        XCTAssertEqual(file.sentences[0].tags, ["B-ORG", "O", "B-MISC", "O"])
        XCTAssertEqual(file.sentences[1].tags, ["B-PER", "I-PER"])
        XCTAssertEqual(file.sentences[0].lines, [3, 4, 5, 6])
        XCTAssertNil(file.sentences[2].tags)
        XCTAssertEqual(file.convertedFromIOB1, 3)
        let pos = try CoNLLFile(path: try write("The DT\ncat NN\n\nsat VBD\n"))
        XCTAssertFalse(pos.isBIO)
        XCTAssertEqual(pos.sentences.map(\.tags), [["DT", "NN"], ["VBD"]])
        let words = try CoNLLFile(path: try write("one\ntwo\n\nthree\n"), labelled: false)
        XCTAssertEqual(words.sentences.map(\.words), [["one", "two"], ["three"]])
        XCTAssertEqual(words.sentences.map(\.tags), [nil, nil])
    }

    func testBadFilesAreRefusedNamingTheLine() throws {
        for (text, message) in [
            ("", "empty file"),
            ("-DOCSTART- O\n\n", "no sentences"),
            ("a DT O\nb O\n", "line 2: 2 columns; the sentence's first word line (line 1) has 3"),
            ("a O\nb I-\n", "line 2: tag I- has no type"),
            ("a O\nb\n", "line 2: one column"),
        ] {
            let path = try write(text)
            XCTAssertThrowsError(try CoNLLFile(path: path)) {
                XCTAssertTrue("\($0)".contains(message) && "\($0)".contains(path), "\($0)")
            }
        }
    }

    /// Spans: B- opens one, I- continues the same type, and an I- after O, after another type or
    /// at the start opens a new one.
    func testEntitySpans() {
        XCTAssertEqual(
            entitySpans(["B-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"]).map {
                "\($0.type) \($0.start)-\($0.end)"
            }, ["PER 0-1", "LOC 3-3", "ORG 4-4", "ORG 5-6"])
        XCTAssertEqual(entitySpans(["I-MISC"]).map(\.end), [0])
        XCTAssertEqual(entitySpans(["O", "O"]), [])
    }

    /// Gold [B-PER I-PER O B-LOC] [B-ORG O], predicted [B-PER I-PER O B-ORG] [I-ORG O]: spans
    /// PER(0-1) LOC(3) ORG(0) against PER(0-1) ORG(3) ORG(0), 2 of 3 right each way; PER 1/1,
    /// LOC 0 of 1 gold, ORG 1 of 2 predicted. Tags: 4 of 6 words right; B-ORG predicted once,
    /// never right, gold once; I-ORG predicted once, never gold.
    func testScoresWorkedByHand() {
        let report = TagReport(
            gold: [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]],
            predicted: [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "O"]], bio: true)
        XCTAssertEqual(report.tokenAccuracy, 4.0 / 6)
        XCTAssertEqual(report.micro.f1, 4.0 / 6, accuracy: 1e-12)
        let tags = Dictionary(uniqueKeysWithValues: report.perTag.map { ($0.name, $0.score) })
        XCTAssertEqual(
            report.perTag.map(\.name), ["B-LOC", "B-ORG", "B-PER", "I-ORG", "I-PER", "O"])
        XCTAssertEqual(tags["B-ORG"], TagScore(correct: 0, predicted: 1, support: 1))
        XCTAssertEqual(tags["O"], TagScore(correct: 2, predicted: 2, support: 2))
        XCTAssertEqual(tags["I-ORG"]?.support, 0)
        // Macro: the mean over the 6 tags of precision (0, 0, 1, 0, 1, 1) = 0.5; weighted by
        // support (1, 1, 1, 0, 1, 2) / 6: (1 + 1 + 2) / 6.
        XCTAssertEqual(report.macro.precision, 0.5, accuracy: 1e-12)
        XCTAssertEqual(report.weighted.recall, 4.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(report.macro.support, 6)
        let entities = Dictionary(
            uniqueKeysWithValues: report.perEntity!.map { ($0.name, $0.score) })
        XCTAssertEqual(entities["PER"], TagScore(correct: 1, predicted: 1, support: 1))
        XCTAssertEqual(entities["LOC"], TagScore(correct: 0, predicted: 0, support: 1))
        XCTAssertEqual(entities["ORG"], TagScore(correct: 1, predicted: 2, support: 1))
        XCTAssertEqual(entities["ORG"]!.f1, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(report.entities, TagScore(correct: 2, predicted: 3, support: 3))
        XCTAssertNil(TagReport(gold: [["DT"]], predicted: [["NN"]], bio: false).entities)
    }
}
