import DistillKit
import XCTest

@testable import distill

/// The JSON the commands write is built by an encoder, so any path or name stays valid JSON.
final class JSONOutputTests: XCTestCase {
    func object(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    func testDemoSummaryEscapesPathsAndWritesNonFiniteAsNull() throws {
        let model = DemoSummary.Model(
            name: "student \"tiny\"", file: nil, parameters: 10, validationAccuracy: 0.5,
            accuracy: 0.25,
            errors: 3, nll: finite(Double.infinity), ece: 0.1, seconds: nil)
        let summary = DemoSummary(
            data: "/data/with \"quote\" and \\ slash", seed: 7, quick: true, patient: false,
            labels: 2000,
            temperatures: [1, 4], chosenTemperature: 4, alpha: 0.7, models: [model])
        let json = try object(try jsonText(summary, pretty: true))
        XCTAssertEqual(json["data"] as? String, "/data/with \"quote\" and \\ slash")
        XCTAssertEqual(json["chosen_temperature"] as? Double, 4)
        let first = try XCTUnwrap((json["models"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["name"] as? String, "student \"tiny\"")
        XCTAssertTrue(first["nll"] is NSNull && first["file"] is NSNull, "\(first)")
        XCTAssertEqual(first["validation_accuracy"] as? Double, 0.5)
    }

    func testEvalJSONNamesEveryFigure() throws {
        // Two examples, two classes: one right, one wrong.
        let report = EvaluationReport(logits: [2, 0, 0, 1], labels: [0, 0], classes: 2)
        let json = try object(try EvalFormatter.json(report, names: ["a \"b\"", "c"]))
        XCTAssertEqual(json["accuracy"] as? Double, 0.5)
        XCTAssertEqual(json["errors"] as? Int, 1)
        XCTAssertEqual(json["confusion"] as? [[Int]], [[1, 1], [0, 0]])
        let perClass = try XCTUnwrap(json["per_class"] as? [[String: Any]])
        XCTAssertEqual(perClass[0]["name"] as? String, "a \"b\"")
        XCTAssertEqual(perClass[0]["support"] as? Int, 2)
        XCTAssertNotNil(json["macro_avg"] as? [String: Any])
    }
}
