import Foundation

/// A grayscale image as SVG: one square per pixel, `pixels` in [0, 1] (1 is white on the page's
/// dark ink: Fashion-MNIST's garments are bright on black, and are drawn so).
func imageSVG(pixels: [Double], width: Int, height: Int, scale: Double = 3) -> String {
    var s =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"image\" width=\"\(svgNumber(Double(width) * scale))\" height=\"\(svgNumber(Double(height) * scale))\" "
    s +=
        "viewBox=\"0 0 \(width) \(height)\" shape-rendering=\"crispEdges\" data-chart=\"image\" data-pixels=\"\(width * height)\">"
    s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"#000\"/>"
    for y in 0..<height {
        for x in 0..<width {
            let v = Int((min(max(pixels[y * width + x], 0), 1) * 255).rounded())
            if v == 0 { continue }  // the black background is already there
            s +=
                "<rect x=\"\(x)\" y=\"\(y)\" width=\"1\" height=\"1\" fill=\"rgb(\(v),\(v),\(v))\"/>"
        }
    }
    return s + "</svg>"
}

/// Two probability distributions over the same classes as paired horizontal bars: the teacher
/// at T = 1 and at the chosen T.
func probabilityBarsSVG(
    classNames: [String], first: [Double], second: [Double], firstLabel: String,
    secondLabel: String,
    label: Int?
) -> String {
    let rowHeight = 16.0
    let nameWidth = 96.0
    let barWidth = 200.0
    let top = 20.0
    let height = top + Double(classNames.count) * rowHeight + 6
    let width = nameWidth + barWidth + 54
    var s =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bars\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
    s +=
        "viewBox=\"0 0 \(Int(width)) \(Int(height))\" data-chart=\"probabilities\" data-classes=\"\(classNames.count)\">"
    s +=
        "<rect x=\"\(svgNumber(nameWidth))\" y=\"4\" width=\"10\" height=\"8\" fill=\"\(palette[0])\"/>"
    s +=
        "<text x=\"\(svgNumber(nameWidth + 14))\" y=\"12\" class=\"legend\">\(escape(firstLabel))</text>"
    s +=
        "<rect x=\"\(svgNumber(nameWidth + 110))\" y=\"4\" width=\"10\" height=\"8\" fill=\"\(palette[1])\"/>"
    s +=
        "<text x=\"\(svgNumber(nameWidth + 124))\" y=\"12\" class=\"legend\">\(escape(secondLabel))</text>"
    for (c, name) in classNames.enumerated() {
        let y = top + Double(c) * rowHeight
        let isLabel = c == label
        s +=
            "<text x=\"\(svgNumber(nameWidth - 4))\" y=\"\(svgNumber(y + 11))\" class=\"classname\(isLabel ? " truth" : "")\">\(escape(name))</text>"
        for (k, (p, colour)) in [(first[c], palette[0]), (second[c], palette[1])].enumerated() {
            let w = max(p * barWidth, p > 0 ? 0.5 : 0)
            s +=
                "<rect x=\"\(svgNumber(nameWidth))\" y=\"\(svgNumber(y + 1 + Double(k) * 7))\" width=\"\(svgNumber(w))\" height=\"6\" fill=\"\(colour)\" data-p=\"\(p)\"><title>\(escape(name)): \(String(format: "%.4f", p))</title></rect>"
        }
        s +=
            "<text x=\"\(svgNumber(nameWidth + barWidth + 4))\" y=\"\(svgNumber(y + 11))\" class=\"value\">\(String(format: "%.3f", second[c]))</text>"
    }
    return s + "</svg>"
}

/// A confusion matrix as an HTML table, each cell shaded by its share of the true class's row.
func confusionTable(_ confusion: [[Int]], classNames: [String]) -> String {
    var s =
        "<table class=\"confusion\" data-chart=\"confusion\" data-total=\"\(confusion.joined().reduce(0, +))\">"
    s +=
        "<tr><th>true \\ predicted</th>" + classNames.map { "<th>\(escape($0))</th>" }.joined()
        + "</tr>"
    for (r, row) in confusion.enumerated() {
        let total = max(row.reduce(0, +), 1)
        s += "<tr><th>\(escape(classNames[r]))</th>"
        for (c, n) in row.enumerated() {
            let share = Double(n) / Double(total)
            let alpha = String(format: "%.3f", share)
            let colour = r == c ? "rgba(0,114,178,\(alpha))" : "rgba(213,94,0,\(alpha))"
            s +=
                "<td style=\"background:\(colour)\"\(share > 0.5 ? " class=\"dark\"" : "")>\(n)</td>"
        }
        s += "</tr>"
    }
    return s + "</table>"
}
