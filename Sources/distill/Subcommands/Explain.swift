import ArgumentParser
import DistillKit
import Foundation

/// `distill explain`: every quantity of the distillation loss for one worked example.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every quantity of the distillation loss for one example.",
        discussion: """
            L = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y).
            Example:
              distill explain --teacher-logits=2.9,0.1,0.23 --student-logits=0.4,-1.3,2.2 --temperature 3 --alpha 0.7 --label 0
            Use the '=' form for lists that start with a minus sign.
            """
    )

    @Option(help: ArgumentHelp("Teacher logits, comma-separated.", valueName: "t1,t2,..."))
    var teacherLogits: FloatList?

    @Option(
        help: ArgumentHelp(
            "Teacher probabilities at T = 1, comma-separated (softened by the power transform p^(1/T)).",
            valueName: "p1,p2,..."))
    var teacherProbabilities: FloatList?

    @Option(help: ArgumentHelp("Student logits, comma-separated.", valueName: "s1,s2,..."))
    var studentLogits: FloatList

    @Option(help: "Temperature T (> 0).")
    var temperature: Float = 4

    @Option(help: "Weight alpha of the soft term, in [0, 1].")
    var alpha: Float = 0.7

    @Option(
        help: "True class index (optional; without it the hard term is omitted and alpha is 1).")
    var label: Int?

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        guard (teacherLogits == nil) != (teacherProbabilities == nil) else {
            throw ValidationError(
                "give exactly one of --teacher-logits and --teacher-probabilities")
        }
        let teacherCount = (teacherLogits ?? teacherProbabilities)!.values.count
        guard teacherCount == studentLogits.values.count else {
            throw ValidationError(
                "the teacher has \(teacherCount) values and the student \(studentLogits.values.count); they must match"
            )
        }
        guard temperature.isFinite, temperature > 0 else {
            throw ValidationError("--temperature must be > 0, got \(temperature)")
        }
        guard alpha >= 0, alpha <= 1 else {
            throw ValidationError("--alpha must be in [0, 1], got \(alpha)")
        }
        if let label, label < 0 || label >= studentLogits.values.count {
            throw ValidationError("--label \(label) is outside [0, \(studentLogits.values.count))")
        }
    }

    func run() throws {
        let e = try Explanation(
            studentLogits: studentLogits.values, teacherLogits: teacherLogits?.values,
            teacherProbabilities: teacherProbabilities?.values, temperature: temperature,
            alpha: alpha, label: label)
        print(json ? try ExplainFormatter.json(e) : ExplainFormatter.table(e))
    }
}

/// Renders an `Explanation` as a table or as JSON.
enum ExplainFormatter {
    static func number(_ x: Float) -> String {
        x.isFinite ? String(format: "%.6g", Double(x)) : "null"
    }

    /// The explanation as one JSON object (non-finite numbers as null).
    static func json(_ e: Explanation) throws -> String {
        struct Output: Encodable {
            let teacherProbs: [Float?], studentProbs: [Float?]
            @NullWhenNil var kl: Float?
            @NullWhenNil var softLoss: Float?
            @NullWhenNil var hardLoss: Float?
            @NullWhenNil var loss: Float?
            let gradient: [Float?]
        }
        return try jsonText(
            Output(
                teacherProbs: e.teacherSoftProbabilities.map(finite),
                studentProbs: e.studentSoftProbabilities.map(finite),
                kl: finite(e.kl), softLoss: finite(e.softLoss), hardLoss: finite(e.hardLoss),
                loss: finite(e.loss),
                gradient: e.gradient.map(finite)))
    }

    static func table(_ e: Explanation) -> String {
        let T = number(e.temperature)
        var lines: [String] = []
        if e.alphaForcedToOne {
            lines.append("note: no --label, so the hard term is omitted and alpha = 1")
        }
        lines.append(
            "T = \(T), alpha = \(number(e.alpha))" + (e.label.map { ", label = \($0)" } ?? ""))
        lines.append("")
        let header = [
            "class", "teacher p(T=1)", "teacher p(T=\(T))", "student q(T=1)", "student q(T=\(T))",
            "dL/ds",
        ]
        var rows: [[String]] = []
        for i in 0..<e.gradient.count {
            rows.append([
                "\(i)" + (e.label == i ? " *" : ""),
                String(format: "%.4f", e.teacherProbabilities[i]),
                String(format: "%.4f", e.teacherSoftProbabilities[i]),
                String(format: "%.4f", e.studentProbabilities[i]),
                String(format: "%.4f", e.studentSoftProbabilities[i]),
                String(format: "%+.4f", e.gradient[i]),
            ])
        }
        let widths = header.indices.map { c in
            max(header[c].count, rows.map { $0[c].count }.max() ?? 0)
        }
        func render(_ r: [String]) -> String {
            r.indices.map { c in String(repeating: " ", count: widths[c] - r[c].count) + r[c] }
                .joined(separator: "  ")
        }
        lines.append(render(header))
        lines += rows.map(render)
        lines.append("")
        lines.append("KL(p_T || q_T)             \(String(format: "%.6f", e.kl))")
        lines.append("T^2 * KL (soft term)       \(String(format: "%.6f", e.softLoss))")
        lines.append(
            "CE(s, y) (hard term)       " + (e.hardLoss.map { String(format: "%.6f", $0) } ?? "-"))
        let formula =
            e.hardLoss != nil
            ? "\(number(e.alpha)) * soft + \(number(1 - e.alpha)) * hard"
            : "\(number(e.alpha)) * soft"
        lines.append("loss = \(formula)" + "  " + String(format: "%.6f", e.loss))
        lines.append("")
        lines.append(
            "soft-term gradient norm: \(String(format: "%.6f", e.softGradientNorm)) with T^2, "
                + "\(String(format: "%.6f", e.softGradientNormWithoutTSquared)) without (T^2 keeps it on the hard term's scale)"
        )
        return lines.joined(separator: "\n")
    }
}
