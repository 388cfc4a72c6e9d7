import ArgumentParser
import DistillKit
import Foundation

/// `distill eval`: accuracy, errors, per-class report, confusion matrix, NLL and ECE.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Evaluate a model: accuracy, errors, per-class precision/recall/F1, confusion matrix, NLL and ECE."
    )

    @Option(help: "The model (.safetensors).") var model: String
    @Option(
        help: "Data directory (default: $DISTILL_DATA, else /usr/share/datasets/fashion-mnist).")
    var data: String?
    @Option(
        help:
            "test, train or validation (the validation split of the training file; valid.txt or valid.conll when present)."
    )
    var split: Split = .test
    @Option(
        help: "The validation split, for --split validation (count or fraction; bytes for text).")
    var validationSplit: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Option(
        help:
            "On text: a teacher language model, for its top-1 agreement with the model and KL(teacher || model) at T = 1."
    )
    var teacher: String?
    @Option(
        help: ArgumentHelp(
            "On text, instead of --teacher: its logits over the file the split is part of (distill logits --split test writes them for test.txt), one row per byte but the last.",
            valueName: "file"))
    var teacherLogits: String?

    enum Split: String, ExpressibleByArgument, CaseIterable { case test, train, validation }

    func run() throws {
        let m = try Model.load(from: model)
        let directory = try DataDirectory.resolveAny(
            data, environment: ProcessInfo.processInfo.environment)
        if TaggingDataset.holdsCoNLL(directory) {
            return try evaluateTagger(m, directory: directory)
        }
        if TextDataset.holdsText(directory) {
            let split = validationSplit.flatMap(ValidationSplit.init) ?? .automatic
            let text = try TextDataset.load(directory, split: split)
            try m.checkByteLanguageModel(model)
            let part =
                self.split == .test
                ? text.test : self.split == .train ? text.training : text.validation
            let teacherModel = try teacher.map { try Model.load(from: $0) }
            if let t = teacherModel, t.inputShape != m.inputShape || t.classes != m.classes {
                throw ValidationError(
                    "--teacher \(teacher!): it takes \(t.inputShape) with \(t.classes) classes; the model \(m.inputShape) with \(m.classes)"
                )
            }
            if teacher != nil && teacherLogits != nil {
                throw ValidationError("give --teacher or --teacher-logits, not both")
            }
            let cached = try teacherLogits.map { path -> TeacherRows in
                let file = part.bytes.count - 1
                let name = (part.bytes.path as NSString).lastPathComponent
                guard
                    case .rows(let rows) = try TeacherSignal.logits(
                        at: path, trainingFile: file, classes: m.classes,
                        fileName: "\(name) (one row per byte but the last)")
                else { throw FileError(path, "not teacher logits") }
                return rows
            }
            let e = try TextEvaluation(
                model: m, split: part, teacher: teacherModel, teacherLogits: cached)
            print(
                json
                    ? try EvalFormatter.json(e)
                    : EvalFormatter.text(
                        e,
                        title:
                            "\(model) on \(self.split.rawValue) text (\(e.count) predicted bytes)"))
            return
        }
        let dataset = try DataDirectory.load(
            resolving: data, environment: ProcessInfo.processInfo.environment, classes: m.classes)
        var examples = split == .test ? dataset.test : dataset.training
        if split == .validation {
            let v = validationSplit.flatMap(ValidationSplit.init) ?? .automatic
            examples = try examples.splittingValidation(v).validation
        }
        try m.check(fits: examples)
        guard let labels = examples.labels else {
            throw ValidationError("the \(split.rawValue) examples have no labels")
        }
        let report = EvaluationReport(
            logits: try inferLogits(model: m, examples: examples), labels: labels,
            classes: m.classes)
        print(
            json
                ? try EvalFormatter.json(report, names: dataset.classNames)
                : EvalFormatter.text(
                    report, names: dataset.classNames,
                    title: "\(model) on \(split.rawValue) (\(examples.count) examples)"))
    }
}

extension Eval {
    /// A tagger on tagged sentences: the per-tag table, entity scores for BIO tags, and words per
    /// second of inference.
    func evaluateTagger(_ m: Model, directory: String) throws {
        guard let tags = m.tagNames else {
            throw ValidationError(
                "\(model) is not a tagger (encoder: or window:, trained on train.conll); \(directory) holds tagged sentences"
            )
        }
        if teacher != nil || teacherLogits != nil {
            throw ValidationError("--teacher and --teacher-logits take text, not tagged sentences")
        }
        let data = try TaggingDataset.load(
            directory, split: validationSplit.flatMap(ValidationSplit.init) ?? .automatic)
        let part =
            split == .test ? data.test : split == .train ? data.training : data.validation
        guard part.labelledSentences > 0 else {
            throw ValidationError("the \(split.rawValue) sentences have no tags")
        }
        let start = monotonicSeconds()
        let logits = try TaggerInference.logits(model: m, sentences: part)
        let seconds = monotonicSeconds() - start
        let e = TaggingEvaluation(logits: logits, tags: tags, sentences: part, bio: data.isBIO)
        let speed = Double(part.words) / max(seconds, 1e-9)
        print(
            json
                ? try EvalFormatter.json(e, wordsPerSecond: speed)
                : EvalFormatter.text(
                    e, wordsPerSecond: speed,
                    title:
                        "\(model) on \(split.rawValue) sentences (\(part.sentences.count) sentences, \(e.words) tagged words)"
                ))
    }
}

enum EvalFormatter {
    /// A tagger's report: the per-tag table (precision, recall, f1-score, support; micro, macro
    /// and weighted averages), then for BIO tags the entities per type and overall.
    static func text(_ e: TaggingEvaluation, wordsPerSecond: Double, title: String) -> String {
        let r = e.report
        let width = max(
            12, (r.perTag.map(\.name.count) + (r.perEntity ?? []).map(\.name.count)).max() ?? 0)
        func row(_ name: String, _ s: TagScore) -> String {
            name.leftPadded(width)
                + String(format: "  %9.4f %9.4f %9.4f %9d", s.precision, s.recall, s.f1, s.support)
        }
        let header = "".leftPadded(width) + "  precision    recall  f1-score   support"
        var lines = [title, ""]
        lines.append(
            String(
                format: "token accuracy %.4f   %.0f words per second", r.tokenAccuracy,
                wordsPerSecond))
        lines += ["", header, ""] + r.perTag.map { row($0.name, $0.score) } + [""]
        lines += [
            row("micro avg", r.micro), row("macro avg", r.macro), row("weighted avg", r.weighted),
        ]
        if let perEntity = r.perEntity, let overall = r.entities {
            lines += ["", "entities (strict spans: type and both ends match)", header, ""]
            lines += perEntity.map { row($0.name, $0.score) } + ["", row("overall", overall)]
        }
        for (tag, words) in e.unseenTags {
            lines.append(
                "note: tag \(tag) (\(words) words) never occurs in the model's training tags; scored as wrong"
            )
        }
        return lines.joined(separator: "\n")
    }

    /// A tagger's report as one JSON object: token_accuracy (and accuracy, the same), the entity
    /// scores (nil without BIO tags), per_tag and per_entity, the averages, words per second.
    static func json(_ e: TaggingEvaluation, wordsPerSecond: Double) throws -> String {
        struct Score: Encodable {
            let precision: Double, recall: Double, f1: Double, support: Int
            init(_ s: TagScore) {
                (precision, recall, f1, support) = (s.precision, s.recall, s.f1, s.support)
            }
        }
        struct Output: Encodable {
            let words: Int
            let accuracy: Double, tokenAccuracy: Double
            @NullWhenNil var entityPrecision: Double?
            @NullWhenNil var entityRecall: Double?
            @NullWhenNil var entityF1: Double?
            let perTag: [String: Score]
            @NullWhenNil var perEntity: [String: Score]?
            let microAvg: Score, macroAvg: Score, weightedAvg: Score
            let unseenTags: [String: Int]
            let wordsPerSecond: Double
            enum CodingKeys: String, CodingKey {
                case words
                case accuracy
                case tokenAccuracy = "token_accuracy"
                case entityPrecision = "entity_precision"
                case entityRecall = "entity_recall"
                case entityF1 = "entity_f1"
                case perTag = "per_tag"
                case perEntity = "per_entity"
                case microAvg = "micro_avg"
                case macroAvg = "macro_avg"
                case weightedAvg = "weighted_avg"
                case unseenTags = "unseen_tags"
                case wordsPerSecond = "words_per_second"
            }
        }
        let r = e.report
        return try jsonText(
            Output(
                words: e.words, accuracy: r.tokenAccuracy, tokenAccuracy: r.tokenAccuracy,
                entityPrecision: r.entities?.precision, entityRecall: r.entities?.recall,
                entityF1: r.entities?.f1,
                perTag: Dictionary(
                    uniqueKeysWithValues: r.perTag.map { ($0.name, Score($0.score)) }),
                perEntity: r.perEntity.map {
                    Dictionary(uniqueKeysWithValues: $0.map { ($0.name, Score($0.score)) })
                },
                microAvg: Score(r.micro), macroAvg: Score(r.macro), weightedAvg: Score(r.weighted),
                unseenTags: Dictionary(
                    uniqueKeysWithValues: e.unseenTags.map { ($0.tag, $0.words) }),
                wordsPerSecond: wordsPerSecond), convertingKeys: false)
    }

    /// A language model's figures: nats and bits per byte, perplexity, next-byte accuracy.
    static func text(_ e: TextEvaluation, title: String) -> String {
        [
            title, "",
            String(
                format:
                    "cross-entropy %.4f nats per byte   %.4f bits per byte   perplexity %.3f   accuracy %.4f",
                e.crossEntropy, e.bitsPerByte, e.perplexity, e.accuracy),
        ].joined(separator: "\n")
            + (e.teacherAgreement.map {
                String(
                    format: "\nteacher agreement %.4f   KL(teacher || model) %.4f nats", $0,
                    e.teacherKL ?? .nan)
            } ?? "")
    }

    /// The language model's figures as one JSON object.
    static func json(_ e: TextEvaluation) throws -> String {
        struct Output: Encodable {
            let count: Int
            @NullWhenNil var crossEntropy: Double?
            @NullWhenNil var bitsPerByte: Double?
            @NullWhenNil var perplexity: Double?
            let accuracy: Double
            // Left out without a teacher.
            let teacherAgreement: Double?, teacherKl: Double?
        }
        return try jsonText(
            Output(
                count: e.count, crossEntropy: finite(e.crossEntropy),
                bitsPerByte: finite(e.bitsPerByte),
                perplexity: finite(e.perplexity), accuracy: e.accuracy,
                teacherAgreement: e.teacherAgreement,
                teacherKl: finite(e.teacherKL)))
    }

    static func text(_ r: EvaluationReport, names: [String]?, title: String) -> String {
        var lines = [title, ""]
        lines.append(
            String(
                format: "accuracy %.4f  (%d errors of %d)   NLL %.4f   ECE %.4f", r.accuracy,
                r.errors, r.count, r.nll, r.ece))
        lines.append("")
        lines.append(r.classificationReport(names: names))
        lines.append("")
        lines.append("confusion matrix (rows: true class, columns: predicted)")
        let width = max(5, String(r.confusion.flatMap { $0 }.max() ?? 0).count + 1)
        lines.append(
            "     " + (0..<r.confusion.count).map { String($0).leftPadded(width) }.joined())
        for (i, row) in r.confusion.enumerated() {
            lines.append(
                String(i).leftPadded(4) + " " + row.map { String($0).leftPadded(width) }.joined()
                    + (names.map { "  " + $0[i] } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    /// The report as one JSON object: accuracy, errors, count, nll, ece, per_class, the micro,
    /// macro and weighted averages, and the confusion matrix (rows: true class).
    static func json(_ r: EvaluationReport, names: [String]?) throws -> String {
        struct Scores: Encodable {
            @NullWhenNil var precision: Double?
            @NullWhenNil var recall: Double?
            @NullWhenNil var f1: Double?
        }
        struct PerClass: Encodable {
            let `class`: Int
            @NullWhenNil var name: String?
            @NullWhenNil var precision: Double?
            @NullWhenNil var recall: Double?
            @NullWhenNil var f1: Double?
            let support: Int
        }
        struct Output: Encodable {
            let accuracy: Double, errors: Int, count: Int
            @NullWhenNil var nll: Double?
            @NullWhenNil var ece: Double?
            let perClass: [PerClass], microAvg: Scores, macroAvg: Scores, weightedAvg: Scores,
                confusion: [[Int]]
        }
        func scores(_ s: (precision: Double, recall: Double, f1: Double)) -> Scores {
            Scores(precision: finite(s.precision), recall: finite(s.recall), f1: finite(s.f1))
        }
        let perClass = r.perClass.enumerated().map { c, s in
            PerClass(
                class: c, name: names?[c], precision: finite(s.precision), recall: finite(s.recall),
                f1: finite(s.f1),
                support: s.support)
        }
        return try jsonText(
            Output(
                accuracy: r.accuracy, errors: r.errors, count: r.count, nll: finite(r.nll),
                ece: finite(r.ece),
                perClass: perClass, microAvg: scores((r.accuracy, r.accuracy, r.accuracy)),
                macroAvg: scores(r.macro), weightedAvg: scores(r.weighted), confusion: r.confusion))
    }
}
