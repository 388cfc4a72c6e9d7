import ArgumentParser
import DistillKit
import Foundation

/// `distill logits`: a frozen model's logits over a split, as NPY.
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Save a model's logits [N, C] over the training or test file as NPY (inference mode).",
        discussion: """
            One row per example of the file, in file order (the training file includes the examples the \
            validation split holds out), so that distill --teacher-logits takes it as it is.
            On text (a language model and a directory with train.txt): one row per byte of train.txt or \
            test.txt but the last, in order, row i predicting byte i + 1 from its evaluation window \
            ([N - 1, 256], 1 KB a byte of text); with --top-k K, the K most probable classes per row \
            into the directory --out: values.npy [N - 1, K], their log-probabilities (log-softmax at \
            T = 1, largest first), and indices.npy (what distill --teacher-top-k takes).
            On tagged sentences (a tagger and a directory with train.conll): one row per word, [words, tags], \
            of train.conll then unlabelled.conll (--split train) or of test.conll, in file order (what \
            distill --teacher-logits takes; a BERT user exports the same after pooling sub-word pieces to words).
            """
    )

    @Option(help: "The model (.safetensors).") var model: String
    @Option(
        help: "Data directory (default: $DISTILL_DATA, else /usr/share/datasets/fashion-mnist).")
    var data: String?
    @Option(help: "train or test.") var split: Split = .train
    @Option(help: "Where to write the logits (.npy; a directory with --top-k).") var out: String
    @Option(
        help:
            "On text: write only the K most probable classes per position (log-probabilities in values.npy, classes in indices.npy)."
    )
    var topK: Int?

    enum Split: String, ExpressibleByArgument, CaseIterable { case train, test }

    func validate() throws {
        try checkOutputPath(out)
        if let topK, topK < 1 || topK > 256 {
            throw ValidationError("--top-k must be from 1 to 256, got \(topK)")
        }
    }

    func run() throws {
        let m = try Model.load(from: model)
        let directory = try DataDirectory.resolveAny(
            data, environment: ProcessInfo.processInfo.environment)
        if TaggingDataset.holdsCoNLL(directory) {
            guard m.tagNames != nil else {
                throw ValidationError(
                    "\(model) is not a tagger; \(directory) holds tagged sentences")
            }
            guard topK == nil else {
                throw ValidationError("--top-k takes a language model on text")
            }
            let data = try TaggingDataset.load(directory)
            let sentences = split == .train ? data.rowOrder : data.test
            let words = try TaggerInference.logits(model: m, sentences: sentences)
            try NPY.write(floats: words, shape: [sentences.words, m.classes], to: out)
            printError(
                "wrote \(out): logits [\(sentences.words), \(m.classes)] of the words of \(split == .train ? "train.conll (and unlabelled.conll)" : "test.conll")"
            )
            return
        }
        if TextDataset.holdsText(directory) {
            try m.checkByteLanguageModel(model)
            let file = TextSplit(
                try MappedBytes(directory + (split == .train ? "/train.txt" : "/test.txt")))
            try TextLogits.write(model: m, split: file, to: out, topK: topK)
            printError(
                "wrote \(out): \(topK.map { "top-\($0) " } ?? "")logits of \(file.predictions) positions of \(split.rawValue).txt"
            )
            return
        }
        guard topK == nil else { throw ValidationError("--top-k takes a language model on text") }
        let dataset = try DataDirectory.load(
            resolving: data, environment: ProcessInfo.processInfo.environment, classes: m.classes)
        let examples = split == .train ? dataset.training : dataset.test
        try m.check(fits: examples)
        let logits = try inferLogits(model: m, examples: examples)
        try NPY.write(floats: logits, shape: [examples.count, m.classes], to: out)
        printError(
            "wrote \(out): logits [\(examples.count), \(m.classes)] of \(split.rawValue) examples")
    }
}
