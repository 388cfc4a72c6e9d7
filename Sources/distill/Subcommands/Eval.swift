import ArgumentParser
import DistillKit
import Foundation

/// `distill eval`: accuracy, errors, per-class report, confusion matrix, NLL and ECE.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model: accuracy, errors, per-class precision/recall/F1, confusion matrix, NLL and ECE.")

    @Option(help: "The model (.safetensors).") var model: String
    @Option(help: "Data directory (default: $DISTILL_DATA, else /usr/share/datasets/fashion-mnist).") var data: String?
    @Option(help: "test, train or validation (the validation split of the training file).") var split: Split = .test
    @Option(help: "The validation split, for --split validation (count or fraction).") var validationSplit: String?
    @Flag(help: "Print one JSON object.") var json = false

    enum Split: String, ExpressibleByArgument, CaseIterable { case test, train, validation }

    func run() throws {
        let m = try Model.load(from: model)
        let dataset = try DataDirectory.load(resolving: data, environment: ProcessInfo.processInfo.environment, classes: m.classes)
        var examples = split == .test ? dataset.test : dataset.training
        if split == .validation {
            let v = validationSplit.flatMap(ValidationSplit.init) ?? .automatic
            examples = try examples.splittingValidation(v).validation
        }
        try m.check(fits: examples)
        guard let labels = examples.labels else { throw ValidationError("the \(split.rawValue) examples have no labels") }
        let report = EvaluationReport(logits: try inferLogits(model: m, examples: examples), labels: labels, classes: m.classes)
        print(json ? EvalFormatter.json(report, names: dataset.classNames) : EvalFormatter.text(report, names: dataset.classNames, title: "\(model) on \(split.rawValue) (\(examples.count) examples)"))
    }
}

enum EvalFormatter {
    static func text(_ r: EvaluationReport, names: [String]?, title: String) -> String {
        var lines = [title, ""]
        lines.append(String(format: "accuracy %.4f  (%d errors of %d)   NLL %.4f   ECE %.4f", r.accuracy, r.errors, r.count, r.nll, r.ece))
        lines.append("")
        lines.append(r.classificationReport(names: names))
        lines.append("")
        lines.append("confusion matrix (rows: true class, columns: predicted)")
        let width = max(5, String(r.confusion.flatMap { $0 }.max() ?? 0).count + 1)
        lines.append("     " + (0..<r.confusion.count).map { String($0).leftPad(width) }.joined())
        for (i, row) in r.confusion.enumerated() {
            lines.append(String(i).leftPad(4) + " " + row.map { String($0).leftPad(width) }.joined() + (names.map { "  " + $0[i] } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ r: EvaluationReport, names: [String]?) -> String {
        func n(_ x: Double) -> String { String(format: "%.6g", x) }
        let perClass = r.perClass.enumerated().map { c, s in
            "{\"class\": \(c), \"name\": \(names.map { "\"\($0[c])\"" } ?? "null"), \"precision\": \(n(s.precision)), \"recall\": \(n(s.recall)), \"f1\": \(n(s.f1)), \"support\": \(s.support)}"
        }
        let (mp, mr, mf) = r.macro, (wp, wr, wf) = r.weighted
        return "{\"accuracy\": \(n(r.accuracy)), \"errors\": \(r.errors), \"count\": \(r.count), \"nll\": \(n(r.nll)), \"ece\": \(n(r.ece)), " +
            "\"per_class\": [\(perClass.joined(separator: ", "))], " +
            "\"micro_avg\": {\"precision\": \(n(r.accuracy)), \"recall\": \(n(r.accuracy)), \"f1\": \(n(r.accuracy))}, " +
            "\"macro_avg\": {\"precision\": \(n(mp)), \"recall\": \(n(mr)), \"f1\": \(n(mf))}, " +
            "\"weighted_avg\": {\"precision\": \(n(wp)), \"recall\": \(n(wr)), \"f1\": \(n(wf))}, " +
            "\"confusion\": [\(r.confusion.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }.joined(separator: ", "))]}"
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
