import DistillCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress on standard error: a bar redrawn in place on a terminal, one line per round otherwise,
/// or nothing.
public final class ConsoleProgress: ProgressReporter {
    public enum Style: Sendable { case bar, lines, quiet }

    public let style: Style
    public let label: String
    /// What the rate counts: "ex/s" (examples) or "tok/s" (positions of text).
    public let unit: String
    private var lastDraw = 0.0

    /// `.bar` when standard error is a terminal, `.lines` when not; `.quiet` when `quiet`.
    public init(label: String, quiet: Bool = false, unit: String = "ex/s") {
        self.label = label
        self.unit = unit
        style = quiet ? .quiet : (isatty(2) != 0 ? .bar : .lines)
    }

    public init(label: String, style: Style, unit: String = "ex/s") {
        self.label = label
        self.style = style
        self.unit = unit
    }

    public func batch(
        round: Int, rounds: Int, step: Int, steps: Int, itemsPerSecond: Double, loss: Double,
        accuracy: Double?, elapsed: Double, totalSteps: Int, stepsDone: Int
    ) {
        guard style == .bar else { return }
        let t = monotonicSeconds()
        guard t - lastDraw > 0.1 || step == steps else { return }
        lastDraw = t
        let width = 24
        let filled = steps > 0 ? width * step / steps : width
        let bar =
            String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let eta = stepsDone > 0 ? elapsed / Double(stepsDone) * Double(totalSteps - stepsDone) : 0
        let acc = accuracy.map { String(format: " acc %.3f", $0) } ?? ""
        let text = String(
            format: "\r%@ %d/%d [%@] %d/%d  %.0f %@  loss %.4f%@  ETA %@ ",
            label, round, rounds, bar, step, steps, itemsPerSecond, unit, loss, acc, duration(eta))
        write(text)
    }

    public func round(_ record: EpochRecord, best: Bool) {
        guard style != .quiet else { return }
        var parts = [String(format: "%@ %d: loss %.4f", label, record.epoch, record.loss)]
        if let s = record.softLoss { parts.append(String(format: "soft %.4f", s)) }
        if let h = record.hardLoss, record.softLoss != nil {
            parts.append(String(format: "hard %.4f", h))
        }
        parts.append(String(format: "train acc %.4f", record.trainingAccuracy))
        if let v = record.validationAccuracy {
            parts.append(String(format: "val acc %.4f%@", v, best ? " *" : ""))
        }
        parts.append(String(format: "lr %.3g", record.learningRate))
        parts.append(duration(record.seconds))
        write((style == .bar ? "\r\u{1B}[K" : "") + parts.joined(separator: ", ") + "\n")
    }

    private func write(_ s: String) {
        FileHandle.standardError.write(s.data(using: .utf8)!)
    }

    private func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}

/// The metrics log: one JSON object per line and round (epoch, step, losses by term, accuracies,
/// learning rate, seconds), rewritten atomically after every round.
public final class MetricsLog: ProgressReporter {
    public let path: String
    private let inner: ProgressReporter?
    private var lines: [String] = []
    /// The first error writing the log, if any (training goes on).
    public private(set) var writeError: Error?

    public init(path: String, forwardingTo inner: ProgressReporter?) {
        self.path = path
        self.inner = inner
    }

    /// Starts from the records of a resumed run.
    public func continueAfter(_ records: [EpochRecord], bestEpoch: Int) {
        lines = records.map { line($0, best: $0.epoch == bestEpoch) }
    }

    public func batch(
        round: Int, rounds: Int, step: Int, steps: Int, itemsPerSecond: Double, loss: Double,
        accuracy: Double?, elapsed: Double, totalSteps: Int, stepsDone: Int
    ) {
        inner?.batch(
            round: round, rounds: rounds, step: step, steps: steps,
            itemsPerSecond: itemsPerSecond,
            loss: loss, accuracy: accuracy, elapsed: elapsed, totalSteps: totalSteps,
            stepsDone: stepsDone)
    }

    /// One line of the log: the record's figures (non-finite ones as null) and whether it is the best.
    private func line(_ r: EpochRecord, best: Bool) -> String {
        struct Line: Encodable {
            let epoch: Int, step: Int
            @NullWhenNil var loss: Double?
            @NullWhenNil var softLoss: Double?
            @NullWhenNil var hardLoss: Double?
            @NullWhenNil var trainAccuracy: Double?
            @NullWhenNil var validationAccuracy: Double?
            let learningRate: Float
            @NullWhenNil var seconds: Double?
            let best: Bool
        }
        let line = Line(
            epoch: r.epoch, step: r.step, loss: finite(r.loss), softLoss: finite(r.softLoss),
            hardLoss: finite(r.hardLoss),
            trainAccuracy: finite(r.trainingAccuracy),
            validationAccuracy: finite(r.validationAccuracy),
            learningRate: r.learningRate, seconds: finite(r.seconds), best: best)
        return (try? jsonText(line)) ?? "{}"  // every field is a plain number, bool or null
    }

    public func round(_ r: EpochRecord, best: Bool) {
        inner?.round(r, best: best)
        lines.append(line(r, best: best))
        do {
            try AtomicFile.write(text: lines.joined(separator: "\n") + "\n", to: path)
        } catch {
            if writeError == nil { writeError = error }
        }
    }
}
