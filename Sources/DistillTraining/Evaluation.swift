import DistillCore
import DistillLosses
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a classifier does on labelled examples: accuracy, errors, negative log-likelihood,
/// expected calibration error, the confusion matrix and per-class precision, recall and F1 (the
/// figures of scikit-learn's `classification_report`).
public struct EvaluationReport: Sendable, Equatable {
    public struct ClassScores: Sendable, Equatable {
        public let precision: Double, recall: Double, f1: Double
        public let support: Int
    }

    public let count: Int
    public let correct: Int
    /// `confusion[true][predicted]`.
    public let confusion: [[Int]]
    /// Mean `-log softmax(z)_y` (natural log).
    public let nll: Double
    /// Expected calibration error over 15 equal-width confidence bins:
    /// `sum_b (n_b / N) |accuracy_b - confidence_b|` (Guo et al., ICML 2017).
    public let ece: Double
    public let perClass: [ClassScores]

    public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : 0 }
    public var errors: Int { count - correct }
    public var macro: (precision: Double, recall: Double, f1: Double) {
        let n = Double(max(perClass.count, 1))
        return (
            perClass.reduce(0) { $0 + $1.precision } / n, perClass.reduce(0) { $0 + $1.recall } / n,
            perClass.reduce(0) { $0 + $1.f1 } / n
        )
    }
    public var weighted: (precision: Double, recall: Double, f1: Double) {
        let total = Double(max(count, 1))
        return (
            perClass.reduce(0) { $0 + $1.precision * Double($1.support) } / total,
            perClass.reduce(0) { $0 + $1.recall * Double($1.support) } / total,
            perClass.reduce(0) { $0 + $1.f1 * Double($1.support) } / total
        )
    }

    /// Scores `logits` (`[count, classes]`) against `labels`. Rows whose label is negative are
    /// skipped.
    public init(logits: [Float], labels: [Int32], classes: Int) {
        precondition(logits.count == labels.count * classes)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var nll = 0.0
        var count = 0
        var correct = 0
        let bins = 15
        var binCount = [Int](repeating: 0, count: bins)
        var binCorrect = binCount
        var binConfidence = [Double](repeating: 0, count: bins)
        for r in 0..<labels.count where labels[r] >= 0 {
            let y = Int(labels[r])
            let row = logits[(r * classes)..<((r + 1) * classes)]
            let best = indexOfMaximum(logits, start: r * classes, count: classes)
            // -inf is a probability of 0
            let defined = !row.contains { $0.isNaN || $0 == .infinity }
            let logP = defined ? logSoftmaxRow(row) : [Double](repeating: .nan, count: classes)
            nll -= logP[y]
            let confidence = exp(logP[best])
            // a row of non-finite logits: an error (NLL too), in no bin
            guard confidence.isFinite else {
                count += 1
                continue
            }
            let bin = min(bins - 1, Int(confidence * Double(bins)))
            binCount[bin] += 1
            binConfidence[bin] += confidence
            if best == y {
                correct += 1
                binCorrect[bin] += 1
            }
            confusion[y][best] += 1
            count += 1
        }
        var ece = 0.0
        for b in 0..<bins where binCount[b] > 0 {
            ece += abs(Double(binCorrect[b]) - binConfidence[b]) / Double(max(count, 1))
        }
        self.count = count
        self.correct = correct
        self.confusion = confusion
        self.nll = count > 0 ? nll / Double(count) : 0
        self.ece = ece
        self.perClass = (0..<classes).map { c in
            let tp = Double(confusion[c][c])
            let predicted = Double((0..<classes).reduce(0) { $0 + confusion[$1][c] })
            let actual = confusion[c].reduce(0, +)
            let precision = predicted > 0 ? tp / predicted : 0
            let recall = actual > 0 ? tp / Double(actual) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return ClassScores(precision: precision, recall: recall, f1: f1, support: actual)
        }
    }

    /// The report as scikit-learn lays it out, with `names` for the classes when given.
    public func classificationReport(names: [String]? = nil) -> String {
        let labels = (0..<perClass.count).map { names?[$0] ?? "\($0)" }
        let width = max(12, (labels.map(\.count).max() ?? 0) + 2)
        func f(_ x: Double) -> String { String(format: "%9.4f", x) }
        var lines = [
            String(repeating: " ", count: width) + "precision   recall   f1-score   support", "",
        ]
        for (c, s) in perClass.enumerated() {
            lines.append(
                labels[c].leftPadded(width) + f(s.precision) + f(s.recall) + "  " + f(s.f1)
                    + String(format: "%10d", s.support))
        }
        lines.append("")
        lines.append(
            "accuracy".leftPadded(width) + String(repeating: " ", count: 20) + f(accuracy)
                + String(format: "%10d", count))
        lines.append(
            "micro avg".leftPadded(width) + f(accuracy) + f(accuracy) + "  " + f(accuracy)
                + String(format: "%10d", count))
        let (mp, mr, mf) = macro
        let (wp, wr, wf) = weighted
        lines.append(
            "macro avg".leftPadded(width) + f(mp) + f(mr) + "  " + f(mf)
                + String(format: "%10d", count))
        lines.append(
            "weighted avg".leftPadded(width) + f(wp) + f(wr) + "  " + f(wf)
                + String(format: "%10d", count))
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// The string right-aligned in `width` columns (spaces before it; unchanged when longer).
    public func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
