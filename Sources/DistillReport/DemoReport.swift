import DistillData
import DistillTraining

extension Report {
    /// The report of `distill demo`: accuracy against T (one seed, one alpha), the curves of the
    /// chosen distilled student and the label-only one, the teacher's softened outputs at the
    /// chosen T, and the confusion matrices.
    /// - Parameters:
    ///   - students: the label-only student first, then one per temperature.
    ///   - teacherTestLogits: the teacher's logits on `test` (computed once by the caller).
    ///   - scored: teacher, label-only student and chosen student on `test`, in that order.
    ///   - teacherValidationAccuracy: drawn across the validation curves (nil: not known).
    public static func fewLabelDemo(
        _ experiment: FewLabelExperiment, students: [FewLabelExperiment.Student],
        chosen: FewLabelExperiment.Student, teacherTestLogits: [Float], scored: [ScoredModel],
        test: Examples, classNames: [String]?, training: Int, validation: Int,
        teacherValidationAccuracy: Double? = nil
    ) -> Report {
        var report = Report(
            title: "Distill demo: a few labels and a teacher",
            classNames: classNames ?? (0..<test.classes).map { "class \($0)" })
        let baseline = students[0]
        let chosenT = chosen.temperature!
        report.facts = [
            (
                "data",
                "\(training) training images (labels kept for \(experiment.labels)), \(validation) validation, \(test.count) test"
            ),
            ("teacher", experiment.teacherKey),
            (
                "students",
                "\(experiment.studentArchitecture), \(experiment.studentSteps) steps each, alpha \(experiment.alpha), seed \(experiment.seed)"
            ),
            (
                "selection",
                "T with the best validation accuracy; one seed, so no spread (distill sweep runs several)"
            ),
        ]
        let accuracy = scored.map(\.evaluation.accuracy)
        report.headline = [
            String(
                format:
                    "Chosen on validation: T %@. Test accuracy: distilled %.4f, label-only %.4f, teacher %.4f.",
                "\(chosenT)", accuracy[2], accuracy[1], accuracy[0])
        ]
        let points = students.compactMap { s in
            s.temperature.map {
                TemperaturePanel.Point(
                    temperature: Double($0), mean: s.summary.bestValidationAccuracy ?? 0, sd: 0,
                    seeds: 1)
            }
        }
        report.panels = [
            TemperaturePanel(
                technique: "fixed temperature", series: [(alpha: experiment.alpha, points: points)],
                baseline: baseline.summary.bestValidationAccuracy.map { ($0, 0) },
                chosen: (Double(chosenT), experiment.alpha))
        ]
        report.curves = [
            ("distilled, T \(chosenT)", chosen.summary.records.map(CurvePoint.init)),
            ("labels only", baseline.summary.records.map(CurvePoint.init)),
        ]
        report.teacherValidationAccuracy = teacherValidationAccuracy
        report.softenedTemperature = chosenT
        report.softened = softenedExamples(
            teacherLogits: teacherTestLogits, examples: test, temperature: chosenT)
        report.models = scored
        return report
    }
}
