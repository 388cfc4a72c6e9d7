import DistillCore
import DistillTraining

/// What `report.html` shows: the choice of temperature, the chosen run against the baseline, the
/// teacher's softened outputs, and where each model errs. Built by `Report.sweep` or by the demo,
/// rendered by `html()`: one self-contained file (inline SVG and CSS, no script, no network).
public struct Report: Sendable {
    /// Validation accuracy against T for one technique: one series per alpha.
    public struct TemperaturePanel: Sendable {
        public struct Point: Sendable {
            /// Mean and sd over the seeds whose run did not diverge; `diverged` counts the others.
            public var temperature: Double, mean: Double, sd: Double, seeds: Int
            public var diverged: Int
            public init(
                temperature: Double, mean: Double, sd: Double, seeds: Int, diverged: Int = 0
            ) {
                (self.temperature, self.mean, self.sd, self.seeds, self.diverged) = (
                    temperature, mean, sd, seeds, diverged
                )
            }
        }
        public var technique: String
        public var series: [(alpha: Float, points: [Point])]
        /// The label-only baseline's validation accuracy (mean, sd over seeds).
        public var baseline: (mean: Double, sd: Double)?
        /// The chosen setting, when it belongs to this technique.
        public var chosen: (temperature: Double, alpha: Float)?
        public var note: String?

        public init(
            technique: String, series: [(alpha: Float, points: [Point])],
            baseline: (mean: Double, sd: Double)?,
            chosen: (temperature: Double, alpha: Float)?, note: String? = nil
        ) {
            (self.technique, self.series, self.baseline, self.chosen, self.note) = (
                technique, series, baseline, chosen, note
            )
        }

        /// Whether `point` of the series at `alpha` is the chosen setting.
        func isChosen(_ point: Point, alpha: Float) -> Bool {
            chosen.map { $0.temperature == point.temperature && $0.alpha == alpha } ?? false
        }
    }

    /// One validation point of a training run.
    public struct CurvePoint: Sendable {
        public var step: Int
        public var loss: Double, softLoss: Double?, hardLoss: Double?
        public var validationAccuracy: Double?
        public init(
            step: Int, loss: Double, softLoss: Double?, hardLoss: Double?,
            validationAccuracy: Double?
        ) {
            (self.step, self.loss, self.softLoss, self.hardLoss, self.validationAccuracy) = (
                step, loss, softLoss, hardLoss, validationAccuracy
            )
        }
        public init(_ r: EpochRecord) {
            self.init(
                step: r.step, loss: r.loss, softLoss: r.softLoss, hardLoss: r.hardLoss,
                validationAccuracy: r.validationAccuracy)
        }
    }

    /// A test image with the teacher's probabilities at T = 1 and at the chosen T.
    public struct SoftenedExample: Sendable {
        /// Pixels in [0, 1], `height * width`; empty when the inputs are not images.
        public var pixels: [Double]
        public var width: Int, height: Int
        public var label: Int?
        public var atOne: [Double], atTemperature: [Double]
        public init(
            pixels: [Double], width: Int, height: Int, label: Int?, atOne: [Double],
            atTemperature: [Double]
        ) {
            (self.pixels, self.width, self.height, self.label, self.atOne, self.atTemperature) = (
                pixels, width, height, label, atOne, atTemperature
            )
        }
    }

    /// A model scored on the test set.
    public struct ScoredModel: Sendable {
        public var name: String
        public var evaluation: EvaluationReport
        public init(name: String, evaluation: EvaluationReport) {
            (self.name, self.evaluation) = (name, evaluation)
        }
    }

    public var title: String
    /// Lines of context: data, teacher, student, seeds, the selection rule.
    public var facts: [(String, String)] = []
    /// The outcome in one sentence each (chosen setting, test accuracy against the baseline).
    public var headline: [String] = []
    public var panels: [TemperaturePanel] = []
    /// Training curves: (name, points) for the chosen run and the baseline.
    public var curves: [(name: String, points: [CurvePoint])] = []
    /// The teacher's validation accuracy, drawn across the curves' validation chart: how the gap
    /// to the teacher closes as training goes on. Nil draws none.
    public var teacherValidationAccuracy: Double?
    public var softenedTemperature: Float?
    public var softened: [SoftenedExample] = []
    public var models: [ScoredModel] = []
    public var classNames: [String]

    public init(title: String, classNames: [String]) {
        self.title = title
        self.classNames = classNames
    }

    /// Writes the report atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(text: html(), to: path)
    }
}
