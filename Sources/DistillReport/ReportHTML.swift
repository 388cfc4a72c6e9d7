import Foundation

extension Report {
    /// The report as one HTML page. It is also well-formed XML (XHTML syntax), so any XML parser
    /// can read it back.
    public func html() -> String {
        var body = "<h1>\(escape(title))</h1>\n"
        if !headline.isEmpty {
            body +=
                "<div class=\"headline\">" + headline.map { "<p>\(escape($0))</p>" }.joined()
                + "</div>\n"
        }
        if !facts.isEmpty {
            body +=
                "<table class=\"facts\">"
                + facts.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td></tr>" }.joined()
                + "</table>\n"
        }
        body += temperatureSection()
        body += curvesSection()
        body += softenedSection()
        body += modelsSection()
        return """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head>
            <meta charset="utf-8"/>
            <title>\(escape(title))</title>
            <style>\(Report.style)</style>
            </head>
            <body>
            \(body)
            <footer>Written by distill. Validation accuracy chooses every setting; the test set is only scored.</footer>
            </body>
            </html>

            """
    }

    private func temperatureSection() -> String {
        guard !panels.isEmpty else { return "" }
        var s = "<section id=\"temperature\"><h2>Validation accuracy against the temperature</h2>\n"
        s +=
            "<p>One line per alpha; points are means over seeds with ± one standard deviation as bars. The dashed line "
        s +=
            "and band are the label-only baseline (mean ± sd); the ring marks the setting chosen on validation. A hollow point "
        s +=
            "had seeds whose training diverged: it shows the others, and the choice counts the diverged ones as they scored.</p>\n<div class=\"row\">"
        for panel in panels {
            let chart = LineChart(
                title: panel.technique, xLabel: "temperature T", yLabel: "validation accuracy",
                logarithmicX: true,
                series: panel.series.map { s in
                    LineChart.Series(
                        name: "alpha \(shortNumber(Double(s.alpha)))",
                        points: s.points.map { p in
                            LineChart.Point(
                                x: p.temperature, y: p.seeds > p.diverged ? p.mean : .nan,
                                spread: p.sd,
                                warning: p.diverged > 0
                                    ? "\(p.diverged) of \(p.seeds) diverged" : nil)
                        })
                },
                reference: panel.baseline.map {
                    .init(name: "baseline", y: $0.mean, spread: $0.sd)
                },
                marked: panel.series.lazy.flatMap { s in
                    s.points.filter { panel.isChosen($0, alpha: s.alpha) }
                }.first
                    .map { ($0.temperature, $0.mean, "chosen") })
            s += "<figure>" + chart.svg()
            if let note = panel.note { s += "<figcaption>\(escape(note))</figcaption>" }
            s += "</figure>\n"
        }
        s += "</div>\n"
        // The same numbers as a table, for reading exact values.
        s +=
            "<table class=\"numbers\"><tr><th>technique</th><th>alpha</th><th>T</th><th>validation accuracy</th><th>sd</th><th>seeds</th><th>diverged</th></tr>"
        for panel in panels {
            for series in panel.series {
                for p in series.points {
                    s +=
                        "<tr\(panel.isChosen(p, alpha: series.alpha) ? " class=\"chosen\"" : "")><td>\(escape(panel.technique))</td><td>\(shortNumber(Double(series.alpha)))</td>"
                    s +=
                        "<td>\(shortNumber(p.temperature))</td><td>\(p.seeds > p.diverged ? String(format: "%.4f", p.mean) : "-")</td><td>\(String(format: "%.4f", p.sd))</td><td>\(p.seeds)</td><td>\(p.diverged > 0 ? "\(p.diverged)" : "")</td></tr>"
                }
            }
        }
        if let b = panels.first?.baseline {
            s +=
                "<tr><td>baseline</td><td></td><td></td><td>\(String(format: "%.4f", b.mean))</td><td>\(String(format: "%.4f", b.sd))</td><td></td></tr>"
        }
        return s + "</table></section>\n"
    }

    private func curvesSection() -> String {
        guard !curves.isEmpty else { return "" }
        var s = "<section id=\"curves\"><h2>Training curves</h2>\n<div class=\"row\">"
        var lossSeries: [LineChart.Series] = []
        for (name, points) in curves {
            lossSeries.append(
                .init(
                    name: "\(name): loss",
                    points: points.map { .init(x: Double($0.step), y: $0.loss) }))
            let soft = points.compactMap { p in
                p.softLoss.map { LineChart.Point(x: Double(p.step), y: $0) }
            }
            let hard = points.compactMap { p in
                p.hardLoss.map { LineChart.Point(x: Double(p.step), y: $0) }
            }
            if !soft.isEmpty, soft.count == points.count,
                points.contains(where: { $0.hardLoss != nil })
            {
                lossSeries.append(.init(name: "\(name): soft", points: soft, dashed: true))
                lossSeries.append(.init(name: "\(name): hard", points: hard, dashed: true))
            }
        }
        s +=
            "<figure>"
            + LineChart(
                title: "training loss by term", xLabel: "step", yLabel: "mean loss per round",
                series: lossSeries
            ).svg()
        s +=
            "<figcaption>The soft term is T² KL and the hard term CE on the labelled rows, before the weights: the loss is alpha × soft + (1 − alpha) × hard.</figcaption></figure>\n"
        let accuracy = curves.map { c in
            LineChart.Series(
                name: c.name,
                points: c.points.compactMap { p in
                    p.validationAccuracy.map { LineChart.Point(x: Double(p.step), y: $0) }
                })
        }
        s +=
            "<figure>"
            + LineChart(
                title: "validation accuracy", xLabel: "step", yLabel: "accuracy", series: accuracy,
                reference: teacherValidationAccuracy.map {
                    LineChart.Reference(name: "teacher", y: $0, spread: 0)
                }
            ).svg()
        if teacherValidationAccuracy != nil {
            s +=
                "<figcaption>The line across is the teacher's validation accuracy: the gap to it as training goes on.</figcaption>"
        }
        s += "</figure>\n"
        return s + "</div></section>\n"
    }

    private func softenedSection() -> String {
        guard !softened.isEmpty, let t = softenedTemperature else { return "" }
        var s =
            "<section id=\"dark-knowledge\"><h2>What the student learns from: the teacher at T = 1 and at T = \(shortNumber(Double(t)))</h2>\n"
        s +=
            "<p>At T = 1 the teacher is mostly confident; softened, it shows which wrong classes it finds similar (the "
        s +=
            "\"dark knowledge\" of Hinton et al.). The true class is in bold.</p>\n<div class=\"row\">"
        for example in softened {
            s += "<figure class=\"example\" data-label=\"\(example.label.map(String.init) ?? "")\">"
            if !example.pixels.isEmpty {
                s += imageSVG(pixels: example.pixels, width: example.width, height: example.height)
            }
            s += probabilityBarsSVG(
                classNames: classNames, first: example.atOne, second: example.atTemperature,
                firstLabel: "T = 1", secondLabel: "T = \(shortNumber(Double(t)))",
                label: example.label)
            if let label = example.label {
                s += "<figcaption>\(escape(classNames[label]))</figcaption>"
            }
            s += "</figure>\n"
        }
        return s + "</div></section>\n"
    }

    private func modelsSection() -> String {
        guard !models.isEmpty else { return "" }
        var s =
            "<section id=\"models\"><h2>Test set: confusion matrices and per-class scores</h2>\n"
        s +=
            "<table class=\"numbers\"><tr><th>model</th><th>accuracy</th><th>errors</th><th>NLL</th><th>ECE</th></tr>"
        for m in models {
            let e = m.evaluation
            s +=
                "<tr><td>\(escape(m.name))</td><td>\(String(format: "%.4f", e.accuracy))</td><td>\(e.errors)</td>"
            s +=
                "<td>\(String(format: "%.4f", e.nll))</td><td>\(String(format: "%.4f", e.ece))</td></tr>"
        }
        s += "</table>\n<div class=\"row\">"
        for m in models {
            s +=
                "<figure><figcaption>\(escape(m.name))</figcaption>\(confusionTable(m.evaluation.confusion, classNames: classNames))</figure>\n"
        }
        s +=
            "</div>\n<h3>Per class: precision / recall / F1</h3>\n<table class=\"numbers perclass\"><tr><th>class</th><th>support</th>"
        s += models.map { "<th>\(escape($0.name))</th>" }.joined() + "</tr>"
        for (c, name) in classNames.enumerated() {
            s +=
                "<tr><td>\(escape(name))</td><td>\(models.first?.evaluation.perClass[c].support ?? 0)</td>"
            for m in models {
                let p = m.evaluation.perClass[c]
                s += "<td>\(String(format: "%.3f / %.3f / %.3f", p.precision, p.recall, p.f1))</td>"
            }
            s += "</tr>"
        }
        return s + "</table></section>\n"
    }

    static let style = """
        body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1280px; padding: 0 16px; }
        h1 { font-size: 24px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
        .headline p { font-size: 16px; margin: 4px 0; }
        table { border-collapse: collapse; margin: 8px 0; } th, td { padding: 3px 8px; text-align: right; }
        th { font-weight: 600; } .facts th, .facts td { text-align: left; }
        .numbers tr:nth-child(even) { background: #f4f6f8; } .numbers tr.chosen { background: #fff3c4; font-weight: 600; }
        .row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; } figure { margin: 8px 0; }
        figcaption { color: #555; font-size: 13px; max-width: 600px; }
        .chart .title { font-weight: 600; font-size: 14px; } .frame { fill: none; stroke: #999; }
        .grid { stroke: #e6e6e6; } .axis { stroke: #999; } .ytick { text-anchor: end; dominant-baseline: middle; font-size: 11px; fill: #444; }
        .xtick { text-anchor: middle; font-size: 11px; fill: #444; } .xlabel, .ylabel { text-anchor: middle; font-size: 12px; fill: #333; }
        .legend { font-size: 11px; fill: #333; } .errorbar { stroke-width: 1.5; } .warning { font-size: 10px; fill: #b00; }
        .reference { stroke: #555; stroke-width: 1.5; stroke-dasharray: 5 3; } .band { fill: #888; fill-opacity: 0.15; }
        .marked { fill: none; stroke: #000; stroke-width: 2; } .markedlabel { text-anchor: middle; font-size: 11px; font-weight: 600; }
        .example { display: flex; gap: 8px; align-items: center; border: 1px solid #eee; padding: 6px; flex-direction: row; flex-wrap: wrap; }
        .example figcaption { width: 100%; }
        .classname { text-anchor: end; font-size: 11px; fill: #333; } .classname.truth { font-weight: 700; fill: #000; } .value { font-size: 10px; fill: #555; }
        .confusion td, .confusion th { font-size: 11px; padding: 2px 5px; border: 1px solid #eee; } .confusion td.dark { color: #fff; }
        footer { margin-top: 32px; color: #777; font-size: 12px; }
        """
}
