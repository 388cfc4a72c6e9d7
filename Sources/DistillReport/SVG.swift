import Foundation

/// Escapes text for HTML and SVG (element content and attribute values).
func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for ch in text {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(ch)
        }
    }
    return out
}

/// A number as SVG wants it: short, no exponent, "." as the decimal point.
func svgNumber(_ x: Double) -> String {
    String(format: "%.2f", x)
}

/// Maps data values onto pixels, linearly or on a log10 axis.
struct Scale {
    let low: Double, high: Double
    let pixelLow: Double, pixelHigh: Double
    let logarithmic: Bool

    init(domain: (Double, Double), pixels: (Double, Double), logarithmic: Bool = false) {
        var (lo, hi) = logarithmic ? (log10(domain.0), log10(domain.1)) : domain
        if !(hi > lo) { (lo, hi) = (lo - 0.5, lo + 0.5) }  // one value: centre it
        (low, high, pixelLow, pixelHigh, self.logarithmic) = (
            lo, hi, pixels.0, pixels.1, logarithmic
        )
    }

    func callAsFunction(_ x: Double) -> Double {
        let v = logarithmic ? log10(x) : x
        return pixelLow + (v - low) / (high - low) * (pixelHigh - pixelLow)
    }
}

/// About `count` round tick values covering `low...high` (1, 2 or 5 times a power of ten apart).
func niceTicks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
    guard high > low else { return [low] }
    let raw = (high - low) / Double(count)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    var ticks: [Double] = []
    var t = ceil(low / step) * step
    while t <= high + step * 1e-9 {
        ticks.append(abs(t) < step * 1e-9 ? 0 : t)
        t += step
    }
    return ticks
}

/// A tick label: as many decimals as the tick spacing needs.
func tickLabel(_ x: Double, spacing: Double) -> String {
    let decimals = spacing >= 1 ? 0 : min(6, Int(ceil(-log10(spacing))))
    return String(format: "%.\(decimals)f", x)
}

/// The colours of series, in order (colour-blind-safe, after Okabe and Ito).
let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
