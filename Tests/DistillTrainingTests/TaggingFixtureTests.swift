import DistillCore
import DistillTestSupport
import Foundation
import XCTest

@testable import DistillData
@testable import DistillTraining

/// The CoNLL files the repository ships (Fixtures/conll, see its README): an IOB1 training file
/// in CoNLL-2003's four columns, and predictions scored by hand.
final class TaggingFixtureTests: XCTestCase {
    let directory = Bundle.module.resourcePath! + "/Fixtures/conll"

    func testReadsCoNLL2003LayoutAndConvertsIOB1() throws {
        let file = try CoNLLFile(path: directory + "/train.conll")
        XCTAssertTrue(file.isBIO)
        XCTAssertEqual(file.sentences.count, 5)
        XCTAssertEqual(file.sentences[0].tags?[0], "B-ORG")  // I-ORG at a sentence's start
        XCTAssertEqual(file.sentences[1].tags, ["B-PER", "I-PER"])
        XCTAssertEqual(file.sentences[3].tags, ["O", "B-ORG", "I-ORG", "O"])
        XCTAssertNil(file.sentences[4].tags)  // all _
        XCTAssertEqual(file.convertedFromIOB1, 6)  // EU, German, British, Peter, BRUSSELS, European
        XCTAssertEqual(file.sentences[3].lines, [21, 22, 23, 24])  // after the second -DOCSTART-
    }

    /// Gold spans: ORG(EU), MISC(German), MISC(British), PER(Peter Blackburn), LOC(BRUSSELS),
    /// ORG(European Commission), MISC(German): 7. Predicted: ORG(EU) right, MISC(German) right,
    /// LOC(British) wrong, PER(Peter) wrong (its end differs), LOC(BRUSSELS) right, ORG(European
    /// Commission) right, MISC(Thursday: an I- after O opens a span) wrong, MISC(German) right:
    /// 5 of 8. Precision 5/8, recall 5/7, F1 10/15. Per type: ORG 2/2 and 2/2; MISC 2/3 and 2/3;
    /// LOC 1/2 and 1/1; PER 0/1 and 0/1. Words: 22 of 25 right.
    func testPredictionsScoredByHand() throws {
        let text = try String(contentsOfFile: directory + "/predicted.conll", encoding: .utf8)
        var gold: [[String]] = [[]]
        var predicted: [[String]] = [[]]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let columns = line.split(separator: " ")
            if columns.isEmpty || columns[0] == "-DOCSTART-" {
                if !gold[gold.count - 1].isEmpty {
                    (gold, predicted) = (gold + [[]], predicted + [[]])
                }
                continue
            }
            gold[gold.count - 1].append(String(columns[1]))
            predicted[predicted.count - 1].append(String(columns[2]))
        }
        let report = TagReport(
            gold: gold.filter { !$0.isEmpty }, predicted: predicted.filter { !$0.isEmpty },
            bio: true)
        XCTAssertEqual(report.tokenAccuracy, 22.0 / 25, accuracy: 1e-12)
        let overall = try XCTUnwrap(report.entities)
        XCTAssertEqual(overall.precision, 5.0 / 8, accuracy: 1e-12)
        XCTAssertEqual(overall.recall, 5.0 / 7, accuracy: 1e-12)
        XCTAssertEqual(overall.f1, 10.0 / 15, accuracy: 1e-12)
        let types = Dictionary(uniqueKeysWithValues: report.perEntity!.map { ($0.name, $0.score) })
        XCTAssertEqual(types["ORG"], TagScore(correct: 2, predicted: 2, support: 2))
        XCTAssertEqual(types["MISC"], TagScore(correct: 2, predicted: 3, support: 3))
        XCTAssertEqual(types["LOC"], TagScore(correct: 1, predicted: 2, support: 1))
        XCTAssertEqual(types["PER"], TagScore(correct: 0, predicted: 1, support: 1))
        XCTAssertEqual(types["LOC"]!.f1, 2.0 / 3, accuracy: 1e-12)
    }
}
