import DistillCore
import DistillData
import DistillLosses
import DistillNN
import Foundation

/// How the temperature is used in a sweep run (each is also a flag of `distill distill`).
public enum SweepTechnique: String, Sendable, CaseIterable, Codable {
    /// A fixed T.
    case fixed
    /// Cosine annealing from T down to 1 over the run.
    case cosine
    /// Logit standardisation with T as the base temperature.
    case standardized
    /// CTKD: a learned temperature. It starts at 11 whatever T the sweep lists, so a sweep runs
    /// it once per alpha, recorded with T = 11.
    case ctkd
    /// Decoupled KD (`--objective dkd`, its default weights) at a fixed T.
    case dkd
    /// DIST (`--objective dist`, its default weights) at a fixed T.
    case dist
    /// Plain KD with its soft term scaled by 4 or 8 (`--kd-scale`), the control for DKD and DIST.
    case kd4, kd8

    /// The temperatures a sweep runs this technique at.
    func temperatures(_ listed: [Float]) -> [Float] {
        self == .ctkd ? [AdaptiveTemperature(learningRate: 0).temperature] : listed
    }

    /// How a run of this technique at `temperature` sets its temperature (the loss itself says
    /// whether logits are standardised).
    public func method(from temperature: Float, learningRate: Float) -> TemperatureMethod {
        switch self {
        case .fixed, .standardized, .dkd, .dist, .kd4, .kd8: return .fixed
        case .cosine:
            return .scheduled(TemperatureSchedule(shape: .cosine, initial: temperature, final: 1))
        case .ctkd: return .learned(learningRate: Double(learningRate))
        }
    }

    /// The loss of a run of this technique at `temperature` and `alpha`.
    public func loss(temperature: Float, alpha: Float) throws -> DistillationLoss {
        let objective: DistillationLoss.Objective =
            self == .dkd ? .dkd : self == .dist ? .dist : .kl
        var loss = try DistillationLoss(
            temperature: temperature, alpha: alpha, objective: objective,
            logitStandardization: self == .standardized)
        loss.softScale = self == .kd4 ? 4 : self == .kd8 ? 8 : 1
        return loss
    }
}

/// One finished run of a sweep.
public struct SweepRun: Sendable, Equatable, Encodable {
    /// A label-only student, or one distilled from the teacher.
    public enum Kind: String, Sendable, Codable { case baseline, distilled }

    public let kind: Kind
    public let technique: SweepTechnique?
    public let temperature: Float?
    public let alpha: Float?
    public let seed: UInt64
    public let validationAccuracy: Double
    public let testAccuracy: Double
    public let seconds: Double
    /// Whether training diverged (a non-finite loss); the run then holds the best weights before
    /// that, and counts as it scores on validation.
    public let diverged: Bool

    /// The key a restarted sweep recognises a finished run by.
    public var key: String {
        kind == .baseline
            ? "baseline seed \(seed)"
            : "\(technique!.rawValue) T \(temperature!) alpha \(alpha!) seed \(seed)"
    }

    /// The run's files in the sweep's `runs/` folder: `NAME.safetensors` (the student) and
    /// `NAME.jsonl` (its metrics log, one line per validation).
    public var fileName: String {
        kind == .baseline
            ? "baseline-seed\(seed)"
            : "\(technique!.rawValue)-T\(temperature!)-alpha\(alpha!)-seed\(seed)"
    }

    var csv: String {
        [
            kind.rawValue, technique?.rawValue ?? "", temperature.map { "\($0)" } ?? "",
            alpha.map { "\($0)" } ?? "", "\(seed)",
            "\(validationAccuracy)", "\(testAccuracy)", String(format: "%.1f", seconds),
            diverged ? "diverged" : "",
        ].joined(separator: ",")
    }

    init(
        kind: Kind, technique: SweepTechnique?, temperature: Float?, alpha: Float?,
        seed: UInt64,
        validationAccuracy: Double, testAccuracy: Double, seconds: Double, diverged: Bool = false
    ) {
        (self.kind, self.technique, self.temperature, self.alpha, self.seed) = (
            kind, technique, temperature, alpha, seed
        )
        (self.validationAccuracy, self.testAccuracy, self.seconds, self.diverged) = (
            validationAccuracy, testAccuracy, seconds, diverged
        )
    }

    private enum CodingKeys: String, CodingKey {
        case kind, technique, temperature, alpha, seed, validationAccuracy, testAccuracy, seconds,
            diverged
    }

    /// Every key, a baseline's technique, temperature and alpha as null.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(technique, forKey: .technique)
        try c.encode(temperature, forKey: .temperature)
        try c.encode(alpha, forKey: .alpha)
        try c.encode(seed, forKey: .seed)
        try c.encode(finite(validationAccuracy), forKey: .validationAccuracy)
        try c.encode(finite(testAccuracy), forKey: .testAccuracy)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(diverged, forKey: .diverged)
    }

    /// Parses a line of `sweep.csv` (8 fields, or 9 with the divergence mark).
    init?(csv line: Substring) {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard f.count == 8 || f.count == 9, let kind = Kind(rawValue: f[0]),
            let seed = UInt64(f[4]), let v = Double(f[5]), let t = Double(f[6]),
            let s = Double(f[7])
        else { return nil }
        self.init(
            kind: kind, technique: SweepTechnique(rawValue: f[1]), temperature: Float(f[2]),
            alpha: Float(f[3]),
            seed: seed, validationAccuracy: v, testAccuracy: t, seconds: s,
            diverged: f.count == 9 && f[8] == "diverged")
    }
}

/// What a sweep chose and how it compares with the baseline (means and sample standard
/// deviations over seeds; the choice is made on validation accuracy only).
public struct SweepSummary: Sendable {
    public let chosen: (technique: SweepTechnique, temperature: Float, alpha: Float)
    public let chosenValidation: Double
    public let chosenTest: (mean: Double, sd: Double)
    public let baselineTest: (mean: Double, sd: Double)
    public let seeds: Int
}

/// A grid of distillation runs: for every seed a label-only baseline, and for every technique,
/// temperature and alpha a distilled student. Finished runs are kept in `directory/sweep.csv`
/// (rewritten atomically after each run), so a sweep started again with the same directory skips
/// them. Each run's student and metrics log go to `directory/runs/` (see `SweepRun.fileName`).
public final class Sweep {
    public let directory: String
    public let temperatures: [Float], alphas: [Float], seeds: [UInt64],
        techniques: [SweepTechnique]
    public private(set) var runs: [SweepRun] = []

    public init(
        directory: String, temperatures: [Float], alphas: [Float], seeds: [UInt64],
        techniques: [SweepTechnique] = [.fixed]
    ) throws {
        (self.directory, self.temperatures, self.alphas, self.seeds, self.techniques) = (
            directory, temperatures, alphas, seeds, techniques
        )
        let csv = directory + "/sweep.csv"
        if FileManager.default.fileExists(atPath: csv) {
            let text = try String(contentsOfFile: csv, encoding: .utf8)
            runs = text.split(separator: "\n").dropFirst().compactMap(SweepRun.init(csv:))
        }
    }

    /// The folder of the runs' students and metrics logs.
    public var runsDirectory: String { directory + "/runs" }

    /// Runs every missing run. `train` trains one student: (technique, T, alpha) for a distilled
    /// run or nil for the baseline, the seed, and where to report its rounds; it returns the
    /// trained model, and whether training diverged (the model then holds its best weights before
    /// that; the sweep records the run, marked, and goes on).
    public func run(
        test: Examples, validation: Examples,
        train: (
            (technique: SweepTechnique, temperature: Float, alpha: Float)?, UInt64,
            ProgressReporter
        ) throws -> (model: Model, diverged: Bool),
        finished: (SweepRun) -> Void
    ) throws {
        try run(
            score: { model, split in
                let examples = split == .test ? test : validation
                return EvaluationReport(
                    logits: try inferLogits(model: model, examples: examples),
                    labels: examples.labels!, classes: model.classes
                ).accuracy
            }, train: train, finished: finished)
    }

    /// The two splits a run is scored on.
    public enum ScoredSplit: Sendable { case validation, test }

    /// Runs every missing run, as `run(test:validation:train:finished:)` does, scoring each
    /// trained model with `score` (accuracy for examples; entity F1 or token accuracy for a
    /// tagger). The score is what the sweep records as its validation and test accuracy.
    public func run(
        score: (Model, ScoredSplit) throws -> Double,
        train: (
            (technique: SweepTechnique, temperature: Float, alpha: Float)?, UInt64,
            ProgressReporter
        ) throws -> (model: Model, diverged: Bool),
        finished: (SweepRun) -> Void
    ) throws {
        try FileManager.default.createDirectory(
            atPath: runsDirectory, withIntermediateDirectories: true)
        let done = Set(runs.map(\.key))
        for seed in seeds {
            var plan: [(SweepTechnique, Float, Float)?] = [nil]
            for technique in techniques {
                for t in technique.temperatures(temperatures) {
                    for a in alphas { plan.append((technique, t, a)) }
                }
            }
            for setting in plan {
                let probe = SweepRun(
                    kind: setting == nil ? .baseline : .distilled, technique: setting?.0,
                    temperature: setting?.1,
                    alpha: setting?.2, seed: seed, validationAccuracy: 0, testAccuracy: 0,
                    seconds: 0)
                if done.contains(probe.key) { continue }
                if stopRequested { return }
                let start = monotonicSeconds()
                let log = MetricsLog(
                    path: "\(runsDirectory)/\(probe.fileName).jsonl", forwardingTo: nil)
                let (model, diverged) = try train(setting.map { ($0.0, $0.1, $0.2) }, seed, log)
                if stopRequested { return }  // an interrupted run is not a finished one
                try model.save(to: "\(runsDirectory)/\(probe.fileName).safetensors")
                let run = SweepRun(
                    kind: probe.kind, technique: probe.technique, temperature: probe.temperature,
                    alpha: probe.alpha,
                    seed: seed, validationAccuracy: try score(model, .validation),
                    testAccuracy: try score(model, .test),
                    seconds: monotonicSeconds() - start, diverged: diverged)
                runs.append(run)
                try save()
                finished(run)
            }
        }
    }

    /// The setting with the best mean validation accuracy over seeds, and its test accuracy
    /// beside the baseline's.
    public func summary() -> SweepSummary? {
        let distilled = runs.filter { $0.kind == .distilled }
        let groups = Dictionary(grouping: distilled) {
            "\($0.technique!.rawValue) \($0.temperature!) \($0.alpha!)"
        }
        guard
            let best = groups.values.max(by: {
                Statistics.mean($0.map(\.validationAccuracy))
                    < Statistics.mean($1.map(\.validationAccuracy))
            }),
            let first = best.first
        else { return nil }
        let baseline = runs.filter { $0.kind == .baseline }.map(\.testAccuracy)
        return SweepSummary(
            chosen: (first.technique!, first.temperature!, first.alpha!),
            chosenValidation: Statistics.mean(best.map(\.validationAccuracy)),
            chosenTest: (
                Statistics.mean(best.map(\.testAccuracy)),
                Statistics.standardDeviation(best.map(\.testAccuracy))
            ),
            baselineTest: (Statistics.mean(baseline), Statistics.standardDeviation(baseline)),
            seeds: best.count)
    }

    func save() throws {
        let header =
            "kind,technique,temperature,alpha,seed,validation_accuracy,test_accuracy,seconds,note"
        try AtomicFile.write(
            text: ([header] + runs.map(\.csv)).joined(separator: "\n") + "\n",
            to: directory + "/sweep.csv")
        struct Chosen: Encodable {
            let technique: SweepTechnique, temperature: Float, alpha: Float
            @NullWhenNil var validationAccuracy: Double?
            @NullWhenNil var testAccuracyMean: Double?
            @NullWhenNil var testAccuracySd: Double?
            @NullWhenNil var baselineTestAccuracyMean: Double?
            @NullWhenNil var baselineTestAccuracySd: Double?
            let seeds: Int
        }
        struct Output: Encodable {
            let runs: [SweepRun]
            @NullWhenNil var chosen: Chosen?
        }
        let chosen = summary().map { s in
            Chosen(
                technique: s.chosen.technique, temperature: s.chosen.temperature,
                alpha: s.chosen.alpha,
                validationAccuracy: finite(s.chosenValidation),
                testAccuracyMean: finite(s.chosenTest.mean),
                testAccuracySd: finite(s.chosenTest.sd),
                baselineTestAccuracyMean: finite(s.baselineTest.mean),
                baselineTestAccuracySd: finite(s.baselineTest.sd), seeds: s.seeds)
        }
        try AtomicFile.write(
            text: try jsonText(Output(runs: runs, chosen: chosen), pretty: true) + "\n",
            to: directory + "/sweep.json")
    }
}
