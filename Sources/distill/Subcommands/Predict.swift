import ArgumentParser
import DistillKit

/// `distill predict`: deployment, with the ordinary softmax.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Predict classes with a model: argmax and top-K probabilities of the ordinary softmax (T = 1).",
        discussion: """
            Temperature has no place here: it is a training-time device. A deployed student predicts with \
            the ordinary softmax (T = 1), and temperature never changes the argmax.
            Input: an IDX file of images [N, H, W] (raw or gzip) or an NPY file ([N, H, W] uint8 images or \
            [N, D] features), normalised as the model records. CSV columns: index,predicted,probability, \
            then class_1,probability_1,... for the top K.
            A tagger takes a CoNLL file (--format conll): every word line comes back with the predicted \
            tag appended as its last column (blank lines and -DOCSTART- lines kept), so that conlleval \
            or seqeval can score a labelled file; written to --out (all or nothing), else printed.
            """)

    @Option(help: "The model (.safetensors).") var model: String
    @Option(help: "Inputs: IDX or NPY; a CoNLL file for a tagger.") var input: String
    @Option(help: "How many classes to list per example, by probability.") var top: Int = 3
    @Option(help: "csv or json; conll for a tagger.") var format: Format = .csv
    @Option(help: "With --format conll: where to write the tagged file (default: print it).")
    var out: String?

    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, json, conll }

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1, got \(top)") }
        if let out {
            guard format == .conll else { throw ValidationError("--out takes --format conll") }
            try checkOutputPath(out)
        }
    }

    func run() throws {
        let m = try Model.load(from: model)
        if format == .conll || m.isTagger {
            guard format == .conll, let tags = m.tagNames else {
                throw ValidationError(
                    m.isTagger
                        ? "\(model) is a tagger: use --format conll with a CoNLL --input"
                        : "--format conll takes a tagger (encoder: or window:)")
            }
            let text = try TaggedOutput.conll(model: m, tags: tags, input: input)
            if let out {
                try AtomicFile.write(text: text, to: out)
            } else {
                print(text, terminator: "")
            }
            return
        }
        let examples = try Examples.read(inputs: input, for: m)
        let logits = try inferLogits(model: m, examples: examples)
        let k = min(top, m.classes)
        struct Ranked: Encodable { let `class`: Int, probability: Float }
        struct Prediction: Encodable {
            let index: Int, predicted: Int, probability: Float, top: [Ranked]
        }
        var csv = [
            "index,predicted,probability,"
                + (1...k).map { "class_\($0),probability_\($0)" }.joined(separator: ",")
        ]
        var predictions: [Prediction] = []
        for r in 0..<examples.count {
            let row = Array(logits[(r * m.classes)..<((r + 1) * m.classes)])
            let probabilities = try softmax(logits: row, temperature: 1)
            let ranked = probabilities.indices.sorted {
                probabilities[$0] > probabilities[$1]
                    || (probabilities[$0] == probabilities[$1] && $0 < $1)
            }
            let best = ranked[0]
            if format == .csv {
                csv.append(
                    "\(r),\(best),\(probabilities[best]),"
                        + ranked.prefix(k).map { "\($0),\(probabilities[$0])" }.joined(
                            separator: ","))
            } else {
                predictions.append(
                    Prediction(
                        index: r, predicted: best, probability: probabilities[best],
                        top: ranked.prefix(k).map {
                            Ranked(class: $0, probability: probabilities[$0])
                        }))
            }
        }
        print(
            format == .csv ? csv.joined(separator: "\n") : try jsonText(predictions, pretty: true))
    }
}
