import DistillReport
import DistillTestSupport
import DistillTraining
import XCTest

/// A report with every section, from made-up numbers.
func sampleReport() -> Report {
    var report = Report(title: "A <sample> & report", classNames: ["zero", "one", "two"])
    report.facts = [("data", "made up")]
    report.headline = ["chosen: T 4"]
    report.panels = [
        Report.TemperaturePanel(
            technique: "fixed",
            series: [
                (
                    alpha: 0.5,
                    points: [
                        .init(temperature: 1, mean: 0.80, sd: 0.01, seeds: 3),
                        .init(temperature: 4, mean: 0.85, sd: 0.02, seeds: 3),
                        .init(temperature: 20, mean: 0.83, sd: 0, seeds: 3),
                    ]
                ),
                (
                    alpha: 0.9,
                    points: [
                        .init(temperature: 1, mean: 0.79, sd: 0.01, seeds: 3),
                        .init(temperature: 4, mean: 0.84, sd: 0.01, seeds: 3),
                    ]
                ),
            ],
            baseline: (0.78, 0.01), chosen: (4, 0.5))
    ]
    report.curves = [
        (
            "chosen",
            (1...5).map {
                Report.CurvePoint(
                    step: $0 * 10, loss: 2 / Double($0), softLoss: 1.5 / Double($0),
                    hardLoss: 0.5 / Double($0), validationAccuracy: 0.5 + 0.05 * Double($0))
            }
        ),
        (
            "baseline",
            (1...5).map {
                Report.CurvePoint(
                    step: $0 * 10, loss: 1 / Double($0), softLoss: nil, hardLoss: 1 / Double($0),
                    validationAccuracy: 0.4 + 0.05 * Double($0))
            }
        ),
    ]
    report.softenedTemperature = 4
    report.softened = [
        Report.SoftenedExample(
            pixels: (0..<12).map { Double($0) / 11 }, width: 4, height: 3, label: 1,
            atOne: [0.01, 0.98, 0.01], atTemperature: [0.2, 0.6, 0.2])
    ]
    let logits: [Float] = [3, 0, 0, 0, 3, 0, 0, 0, 3, 3, 0, 0]
    report.models = [
        Report.ScoredModel(
            name: "teacher",
            evaluation: EvaluationReport(logits: logits, labels: [0, 1, 2, 1], classes: 3))
    ]
    return report
}

final class ReportTests: XCTestCase {
    func testReportIsWellFormedAndEveryChartHasItsData() throws {
        let page = try ChartCollector.read(sampleReport().html())
        let kinds = page.charts.map(\.kind)
        // accuracy vs T, loss terms, validation accuracy
        XCTAssertEqual(kinds.filter { $0 == "line" }.count, 3)
        XCTAssertEqual(kinds.filter { $0 == "image" }.count, 1)
        XCTAssertEqual(kinds.filter { $0 == "probabilities" }.count, 1)
        XCTAssertEqual(kinds.filter { $0 == "confusion" }.count, 1)
        XCTAssertTrue(page.text.contains("A <sample> & report"), "escaped title reads back")

        // Accuracy against T: every point of every alpha, at its value, the baseline and the chosen mark.
        let temperature = page.charts.first { $0.kind == "line" }!
        let points = temperature.elements.filter {
            $0.name == "circle" && $0.attributes["data-y"] != nil
        }
        XCTAssertEqual(
            points.compactMap { Double($0.attributes["data-y"]!) }.sorted(),
            [0.79, 0.80, 0.83, 0.84, 0.85])
        XCTAssertEqual(temperature.elements.filter { $0.name == "polyline" }.count, 2)
        XCTAssertNotNil(
            temperature.elements.first {
                $0.attributes["data-series"] == "baseline" && $0.attributes["data-y"] == "0.78"
            })
        XCTAssertNotNil(
            temperature.elements.first {
                $0.attributes["data-marked"] == "chosen" && $0.attributes["data-x"] == "4.0"
                    && $0.attributes["data-y"] == "0.85"
            })
        XCTAssertEqual(
            sampleReport().html().components(separatedBy: "<tr class=\"chosen\">").count, 2,
            "one chosen row")
        // Error bars for the points with a spread (four of five).
        XCTAssertEqual(
            temperature.elements.filter { $0.attributes["class"] == "errorbar" }.count, 4)

        // Loss terms: total, soft and hard of the distilled run; the baseline's total only.
        let losses = page.charts.filter { $0.kind == "line" }[1]
        XCTAssertEqual(
            losses.elements.filter { $0.name == "g" && $0.attributes["data-series"] != nil }.map {
                $0.attributes["data-points"]
            },
            ["5", "5", "5", "5"])
        // The validation chart draws the teacher's accuracy across when it is known.
        let validation = page.charts.filter { $0.kind == "line" }[2]
        XCTAssertNil(validation.elements.first { $0.attributes["data-series"] == "teacher" })
        var withTeacher = sampleReport()
        withTeacher.teacherValidationAccuracy = 0.91
        let drawn = try ChartCollector.read(withTeacher.html()).charts.filter { $0.kind == "line" }[
            2]
        XCTAssertNotNil(
            drawn.elements.first {
                $0.attributes["data-series"] == "teacher" && $0.attributes["data-y"] == "0.91"
            })
        // The image has its pixels (all but the one black one drawn), the bars one pair per class.
        let image = page.charts.first { $0.kind == "image" }!
        XCTAssertEqual(image.elements.filter { $0.name == "rect" }.count, 1 + 11)
        let bars = page.charts.first { $0.kind == "probabilities" }!
        XCTAssertEqual(
            bars.elements.compactMap { $0.attributes["data-p"] }.compactMap(Double.init),
            [0.01, 0.2, 0.98, 0.6, 0.01, 0.2])
        // The confusion matrix: 3 x 3 counts summing to the examples.
        let confusion = page.charts.first { $0.kind == "confusion" }!
        XCTAssertEqual(confusion.elements.filter { $0.name == "td" }.count, 9)
        XCTAssertEqual(confusion.elements.first?.attributes["data-total"], "4")
    }

    func testOnePointAndLogScaleEdgeCasesStillDraw() throws {
        var report = Report(title: "one point", classNames: ["a", "b"])
        report.panels = [
            Report.TemperaturePanel(
                technique: "ctkd",
                series: [(alpha: 1, points: [.init(temperature: 11, mean: 0.9, sd: 0, seeds: 1)])],
                baseline: nil, chosen: nil)
        ]
        let page = try ChartCollector.read(report.html())
        let chart = try XCTUnwrap(page.charts.first)
        let circle = try XCTUnwrap(chart.elements.first { $0.name == "circle" })
        let (cx, cy) = (Double(circle.attributes["cx"]!)!, Double(circle.attributes["cy"]!)!)
        XCTAssertTrue(cx.isFinite && cy.isFinite && cx > 0 && cy > 0, "\(cx), \(cy)")
    }

    /// A setting with diverged seeds is drawn from the others, hollow, with a warning; a setting
    /// whose every seed diverged has no point, only its row in the table.
    func testDivergedSeedsAreShownAsSuch() throws {
        var report = Report(title: "diverged", classNames: ["a", "b"])
        report.panels = [
            Report.TemperaturePanel(
                technique: "fixed",
                series: [
                    (
                        alpha: 0.9,
                        points: [
                            .init(temperature: 1, mean: 0.9, sd: 0, seeds: 3),
                            .init(temperature: 4, mean: 0.88, sd: 0.01, seeds: 3, diverged: 1),
                            .init(temperature: 20, mean: 0, sd: 0, seeds: 3, diverged: 3),
                        ]
                    )
                ], baseline: nil, chosen: nil)
        ]
        let html = report.html()
        let page = try ChartCollector.read(html)
        let circles = try XCTUnwrap(page.charts.first).elements.filter { $0.name == "circle" }
        XCTAssertEqual(circles.compactMap { $0.attributes["data-x"] }, ["1.0", "4.0"])
        XCTAssertEqual(circles[1].attributes["fill"], "#fff")
        XCTAssertTrue(page.text.contains("1 of 3 diverged"))
        XCTAssertTrue(html.contains("<td>20</td><td>-</td>"), "the all-diverged setting's row")
    }
}
