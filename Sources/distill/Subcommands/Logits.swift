import ArgumentParser
import DistillKit
import Foundation

/// `distill logits`: a frozen model's logits over a split, as NPY.
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Save a model's logits [N, C] over the training or test file as NPY (inference mode).",
        discussion:
            "One row per example of the file, in file order (the training file includes the examples the validation split holds out), so that distill --teacher-logits takes it as it is."
    )

    @Option(help: "The model (.safetensors).") var model: String
    @Option(
        help: "Data directory (default: $DISTILL_DATA, else /usr/share/datasets/fashion-mnist).")
    var data: String?
    @Option(help: "train or test.") var split: Split = .train
    @Option(help: "Where to write the logits (.npy).") var out: String

    enum Split: String, ExpressibleByArgument, CaseIterable { case train, test }

    func validate() throws { try checkOutputPath(out) }

    func run() throws {
        let m = try Model.load(from: model)
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
