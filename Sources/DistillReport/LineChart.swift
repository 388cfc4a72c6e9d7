import Foundation

/// A line chart drawn as inline SVG: series of points with optional error bars, an optional
/// horizontal reference line with a band (a baseline and its spread), and an optional marked
/// point. Every point carries `data-x` / `data-y` attributes, so a reader (or a test) can check
/// what the chart shows.
struct LineChart {
    struct Point {
        var x: Double, y: Double
        /// Half the height of the error bar (a standard deviation); 0 draws none.
        var spread: Double = 0
        /// A warning drawn beside the point (e.g. "1 of 3 diverged"), which is then drawn hollow.
        var warning: String?
    }

    struct Series {
        var name: String
        var points: [Point]
        var dashed = false
    }

    struct Reference {
        var name: String
        var y: Double
        var spread: Double
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var logarithmicX = false
    var series: [Series]
    var reference: Reference?
    var marked: (x: Double, y: Double, label: String)?
    /// The plot area's width; the legend is added to its right, as wide as its longest name.
    var plotWidth = 440.0, height = 340.0

    func svg() -> String {
        let names = (reference.map { [$0.name] } ?? []) + series.map(\.name)
        let legendWidth = 48 + 6.3 * Double(names.map(\.count).max() ?? 0)
        let width = 64 + plotWidth + legendWidth
        let left = 64.0
        let right = left + plotWidth
        let top = 34.0
        let bottom = height - 48
        let points = series.flatMap(\.points).filter { $0.y.isFinite }
        var xs = points.map(\.x)
        var ys = points.flatMap { [$0.y - $0.spread, $0.y + $0.spread] }
        if let reference { ys += [reference.y - reference.spread, reference.y + reference.spread] }
        if let marked {
            xs.append(marked.x)
            ys.append(marked.y)
        }
        if logarithmicX { xs = xs.filter { $0 > 0 } }
        let xDomain = (xs.min() ?? 0, xs.max() ?? 1)
        var (yLow, yHigh) = (ys.min() ?? 0, ys.max() ?? 1)
        let pad = max((yHigh - yLow) * 0.08, 1e-3)
        (yLow, yHigh) = (yLow - pad, yHigh + pad)
        let logX = logarithmicX && xDomain.0 > 0
        // Room at both ends of x so end points and their bars are not on the frame.
        let xPixels = (left + 18, right - 18)
        let sx = Scale(domain: xDomain, pixels: xPixels, logarithmic: logX)
        let sy = Scale(domain: (yLow, yHigh), pixels: (bottom, top))

        var s =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        s +=
            "viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(title))\" data-chart=\"line\">\n"
        s += "<text x=\"\(svgNumber(left))\" y=\"20\" class=\"title\">\(escape(title))</text>\n"
        s +=
            "<rect x=\"\(svgNumber(left))\" y=\"\(svgNumber(top))\" width=\"\(svgNumber(right - left))\" height=\"\(svgNumber(bottom - top))\" class=\"frame\"/>\n"
        // Axes: y ticks at round values, x ticks at round values (linear) or at the data's x (log).
        let yTicks = niceTicks(yLow, yHigh)
        let ySpacing = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        for t in yTicks {
            let y = svgNumber(sy(t))
            s +=
                "<line x1=\"\(svgNumber(left))\" x2=\"\(svgNumber(right))\" y1=\"\(y)\" y2=\"\(y)\" class=\"grid\"/>"
            s +=
                "<text x=\"\(svgNumber(left - 6))\" y=\"\(y)\" class=\"ytick\">\(tickLabel(t, spacing: ySpacing))</text>\n"
        }
        let xTicks: [Double]
        if logX {
            xTicks = Array(Set(points.map(\.x).filter { $0 > 0 })).sorted()
        } else {
            xTicks = niceTicks(xDomain.0, xDomain.1, count: 6)
        }
        let xSpacing = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        for t in xTicks {
            let x = svgNumber(sx(t))
            let label = logX ? shortNumber(t) : tickLabel(t, spacing: xSpacing)
            s +=
                "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(svgNumber(bottom))\" y2=\"\(svgNumber(bottom + 5))\" class=\"axis\"/>"
            s +=
                "<text x=\"\(x)\" y=\"\(svgNumber(bottom + 18))\" class=\"xtick\">\(label)</text>\n"
        }
        s +=
            "<text x=\"\(svgNumber((left + right) / 2))\" y=\"\(svgNumber(height - 8))\" class=\"xlabel\">\(escape(xLabel + (logX ? " (log scale)" : "")))</text>\n"
        s +=
            "<text transform=\"translate(16 \(svgNumber((top + bottom) / 2))) rotate(-90)\" class=\"ylabel\">\(escape(yLabel))</text>\n"

        var legend: [(String, String, Bool)] = []
        if let reference {
            let y0 = sy(reference.y + reference.spread)
            let y1 = sy(reference.y - reference.spread)
            s +=
                "<g data-series=\"\(escape(reference.name))\" data-y=\"\(reference.y)\" data-spread=\"\(reference.spread)\">"
            if reference.spread > 0 {
                s +=
                    "<rect x=\"\(svgNumber(left))\" y=\"\(svgNumber(y0))\" width=\"\(svgNumber(right - left))\" height=\"\(svgNumber(max(y1 - y0, 0.5)))\" class=\"band\"/>"
            }
            let y = svgNumber(sy(reference.y))
            s +=
                "<line x1=\"\(svgNumber(left))\" x2=\"\(svgNumber(right))\" y1=\"\(y)\" y2=\"\(y)\" class=\"reference\"/></g>\n"
            legend.append((reference.name, "#555555", true))
        }
        for (i, series) in series.enumerated() {
            let colour = palette[i % palette.count]
            legend.append((series.name, colour, series.dashed))
            let sorted = series.points.sorted { $0.x < $1.x }.filter {
                (!logX || $0.x > 0) && $0.y.isFinite
            }
            s += "<g data-series=\"\(escape(series.name))\" data-points=\"\(sorted.count)\">"
            if sorted.count > 1 {
                let path = sorted.map { "\(svgNumber(sx($0.x))),\(svgNumber(sy($0.y)))" }.joined(
                    separator: " ")
                s +=
                    "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"\(series.dashed ? " stroke-dasharray=\"5 3\"" : "")/>"
            }
            for p in sorted {
                let x = svgNumber(sx(p.x))
                if p.spread > 0 {
                    s +=
                        "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(svgNumber(sy(p.y - p.spread)))\" y2=\"\(svgNumber(sy(p.y + p.spread)))\" stroke=\"\(colour)\" class=\"errorbar\"/>"
                }
                let radius = sorted.count > 40 ? 1.5 : 3.5
                let fill =
                    p.warning == nil
                    ? "fill=\"\(colour)\"" : "fill=\"#fff\" stroke=\"\(colour)\" stroke-width=\"2\""
                let note = p.warning.map { " (\($0))" } ?? ""
                s +=
                    "<circle cx=\"\(x)\" cy=\"\(svgNumber(sy(p.y)))\" r=\"\(radius)\" \(fill) data-x=\"\(p.x)\" data-y=\"\(p.y)\" data-spread=\"\(p.spread)\"><title>\(escape(series.name)): \(shortNumber(p.x)), \(String(format: "%.4f", p.y))\(p.spread > 0 ? String(format: " ± %.4f", p.spread) : "")\(escape(note))</title></circle>"
                if let warning = p.warning {
                    s +=
                        "<text x=\"\(svgNumber(sx(p.x) + 6))\" y=\"\(svgNumber(sy(p.y) + 14))\" class=\"warning\">\(escape(warning))</text>"
                }
            }
            s += "</g>\n"
        }
        if let marked, !logX || marked.x > 0 {
            let x = svgNumber(sx(marked.x))
            let y = svgNumber(sy(marked.y))
            s +=
                "<g data-marked=\"\(escape(marked.label))\" data-x=\"\(marked.x)\" data-y=\"\(marked.y)\">"
            s += "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"8\" class=\"marked\"/>"
            s +=
                "<text x=\"\(x)\" y=\"\(svgNumber(sy(marked.y) - 12))\" class=\"markedlabel\">\(escape(marked.label))</text></g>\n"
        }
        for (i, entry) in legend.enumerated() {
            let y = top + 10 + Double(i) * 18
            s +=
                "<line x1=\"\(svgNumber(right + 10))\" x2=\"\(svgNumber(right + 32))\" y1=\"\(svgNumber(y))\" y2=\"\(svgNumber(y))\" stroke=\"\(entry.1)\" stroke-width=\"2\"\(entry.2 ? " stroke-dasharray=\"5 3\"" : "")/>"
            s +=
                "<text x=\"\(svgNumber(right + 38))\" y=\"\(svgNumber(y + 4))\" class=\"legend\">\(escape(entry.0))</text>\n"
        }
        return s + "</svg>"
    }
}

/// 1, 2.5, 20: a number without trailing zeros.
func shortNumber(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : String(format: "%g", x)
}
