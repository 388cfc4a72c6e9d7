import DistillCore
import DistillData
import DistillLosses
import DistillNN
import DistillTraining
import Foundation

extension Report {
    /// The teacher's probabilities at T = 1 and at `temperature` on a few test examples: the
    /// first example of each class, up to `count` of them.
    public static func softenedExamples(
        teacherLogits: [Float], examples: Examples, temperature: Float,
        count: Int = 8
    ) -> [SoftenedExample] {
        let classes = examples.classes
        var picked: [Int] = []
        var seen = Set<Int32>()
        for i in 0..<examples.count where picked.count < count {
            let label = examples.labels?[i] ?? -1
            if examples.labels != nil, label < 0 || seen.contains(label) { continue }
            seen.insert(label)
            picked.append(i)
        }
        var buffer = [Float](repeating: 0, count: examples.featureCount)
        return picked.map { i in
            let logits = Array(teacherLogits[(i * classes)..<((i + 1) * classes)])
            var pixels: [Double] = []
            var (width, height) = (0, 0)
            if examples.isImage, examples.exampleShape[0] == 1 {
                (height, width) = (examples.exampleShape[1], examples.exampleShape[2])
                buffer.withUnsafeMutableBufferPointer {
                    examples.write(example: i, to: $0.baseAddress!)
                }
                let lo = Double(buffer.min() ?? 0)
                let hi = Double(buffer.max() ?? 1)
                pixels = buffer.map { hi > lo ? (Double($0) - lo) / (hi - lo) : 0 }
            }
            let label = examples.labels.map { Int($0[i]) }
            return SoftenedExample(
                pixels: pixels, width: width, height: height, label: label,
                atOne: probabilities(logits, temperature: 1),
                atTemperature: probabilities(logits, temperature: temperature))
        }
    }

    /// A model's test-set evaluation.
    public static func score(_ model: Model, name: String, on test: Examples) throws -> ScoredModel
    {
        ScoredModel(
            name: name,
            evaluation: EvaluationReport(
                logits: try inferLogits(model: model, examples: test),
                labels: test.labels!, classes: model.classes))
    }

    /// The report of a sweep: accuracy against T per technique, the chosen setting's curves and
    /// models (its first seed) beside the baseline's, the teacher's softened outputs at the chosen T.
    /// - Parameters:
    ///   - teacherLogits: the teacher's logits on `test` (computed once by the caller).
    public static func sweep(
        _ sweep: Sweep, teacher: Model, teacherLogits: [Float], test: Examples,
        classNames: [String],
        facts: [(String, String)]
    ) throws -> Report {
        var report = Report(
            title: "Distillation sweep: choosing the temperature", classNames: classNames)
        report.facts = facts
        let baselines = sweep.runs.filter { $0.kind == .baseline }
        let baselineValidation =
            baselines.isEmpty
            ? nil
            : (
                mean: Statistics.mean(baselines.map(\.validationAccuracy)),
                sd: Statistics.standardDeviation(baselines.map(\.validationAccuracy))
            )
        let summary = sweep.summary()
        for technique in sweep.techniques {
            let runs = sweep.runs.filter { $0.kind == .distilled && $0.technique == technique }
            guard !runs.isEmpty else { continue }
            let alphas = Array(Set(runs.map { $0.alpha! })).sorted()
            let series = alphas.map { alpha in
                let atAlpha = runs.filter { $0.alpha == alpha }
                let temperatures = Array(Set(atAlpha.map { $0.temperature! })).sorted()
                return (
                    alpha: alpha,
                    points: temperatures.map { t in
                        let runs = atAlpha.filter { $0.temperature == t }
                        let v = runs.filter { !$0.diverged }.map(\.validationAccuracy)
                        return TemperaturePanel.Point(
                            temperature: Double(t), mean: Statistics.mean(v),
                            sd: Statistics.standardDeviation(v), seeds: runs.count,
                            diverged: runs.count - v.count)
                    }
                )
            }
            var chosen: (Double, Float)?
            if let summary, summary.chosen.technique == technique {
                chosen = (Double(summary.chosen.temperature), summary.chosen.alpha)
            }
            let notes: [SweepTechnique: String] = [
                .fixed: "A fixed temperature T.",
                .cosine: "T annealed from the value shown down to 1 (cosine).",
                .standardized:
                    "Logit standardisation: logits z-scored before dividing by the base T shown.",
                .ctkd: "CTKD: the temperature is learned (it starts at 11, the x position shown).",
            ]
            report.panels.append(
                TemperaturePanel(
                    technique: technique.rawValue, series: series, baseline: baselineValidation,
                    chosen: chosen, note: notes[technique]))
        }
        report.models = [
            ScoredModel(
                name: "teacher",
                evaluation: EvaluationReport(
                    logits: teacherLogits, labels: test.labels!,
                    classes: teacher.classes))
        ]
        guard let summary,
            let firstSeed = sweep.seeds.first(where: { seed in
                sweep.runs.contains {
                    $0.kind == .distilled && $0.seed == seed
                        && $0.technique == summary.chosen.technique
                        && $0.temperature == summary.chosen.temperature
                        && $0.alpha == summary.chosen.alpha
                }
            })
        else { return report }
        let chosenRun = sweep.runs.first {
            $0.kind == .distilled && $0.seed == firstSeed
                && $0.technique == summary.chosen.technique
                && $0.temperature == summary.chosen.temperature && $0.alpha == summary.chosen.alpha
        }!
        let chosenName =
            "distilled (\(summary.chosen.technique.rawValue), T \(shortNumber(Double(summary.chosen.temperature))), alpha \(shortNumber(Double(summary.chosen.alpha))))"
        report.headline = [
            "Chosen on validation: \(chosenName), validation accuracy \(String(format: "%.4f", summary.chosenValidation)) over \(summary.seeds) seed(s).",
            String(
                format:
                    "Test accuracy: distilled %.4f ± %.4f, label-only baseline %.4f ± %.4f (mean ± sd over seeds); difference %+.2f points.",
                summary.chosenTest.mean, summary.chosenTest.sd, summary.baselineTest.mean,
                summary.baselineTest.sd,
                100 * (summary.chosenTest.mean - summary.baselineTest.mean)),
        ]
        let baselineRun = baselines.first { $0.seed == firstSeed }
        for (name, run) in [("chosen", Optional(chosenRun)), ("baseline", baselineRun)] {
            guard let run else { continue }
            let base = sweep.runsDirectory + "/" + run.fileName
            if let points = try? readMetricsLog(base + ".jsonl") {
                report.curves.append(("\(name), seed \(firstSeed)", points))
            }
            if let model = try? Model.load(from: base + ".safetensors") {
                report.models.append(
                    try score(
                        model,
                        name: name == "chosen"
                            ? "\(chosenName), seed \(firstSeed)" : "baseline, seed \(firstSeed)",
                        on: test))
            }
        }
        report.softenedTemperature = summary.chosen.temperature
        report.softened = softenedExamples(
            teacherLogits: teacherLogits, examples: test, temperature: summary.chosen.temperature)
        return report
    }

    /// Reads a metrics log written by `MetricsLog` (one JSON object per round).
    public static func readMetricsLog(_ path: String) throws -> [CurvePoint] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8))
                    as? [String: Any],
                let step = object["step"] as? Int, let loss = object["loss"] as? Double
            else { return nil }
            return CurvePoint(
                step: step, loss: loss, softLoss: object["soft_loss"] as? Double,
                hardLoss: object["hard_loss"] as? Double,
                validationAccuracy: object["validation_accuracy"] as? Double)
        }
    }
}

/// The softmax of one row of finite logits at `temperature`, for display.
func probabilities(_ logits: [Float], temperature: Float) -> [Double] {
    var out = [Float](repeating: 0, count: logits.count)
    logits.withUnsafeBufferPointer { z in
        out.withUnsafeMutableBufferPointer { p in
            try! softmax(
                // finite logits, T > 0
                logits: z, rows: 1, classes: logits.count, temperature: temperature, into: p)
        }
    }
    return out.map(Double.init)
}
