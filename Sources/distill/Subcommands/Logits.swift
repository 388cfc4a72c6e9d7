import ArgumentParser
import DistillKit
import Foundation

/// `distill logits`: a frozen model's logits over a split, as NPY.
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save a model's logits [N, C] over the training or test file as NPY (inference mode).",
        discussion: "One row per example of the file, in file order (the training file includes the examples the validation split holds out), so that distill --teacher-logits takes it as it is.")

    @Option(help: "The model (.safetensors).") var model: String
    @Option(help: "Data directory (default: $DISTILL_DATA, else /usr/share/datasets/fashion-mnist).") var data: String?
    @Option(help: "train or test.") var split: Split = .train
    @Option(help: "Where to write the logits (.npy).") var out: String

    enum Split: String, ExpressibleByArgument, CaseIterable { case train, test }

    func validate() throws { try checkOutputPath(out) }

    func run() throws {
        let m = try loadModel(model)
        let dataset = try DataOptions.loadDataset(data, classes: m.classes)
        let examples = split == .train ? dataset.training : dataset.test
        try checkModel(m, fits: examples)
        let logits = try inferLogits(model: m, examples: examples)
        try NPY.write(floats: logits, shape: [examples.count, m.classes], to: out)
        printError("wrote \(out): logits [\(examples.count), \(m.classes)] of \(split.rawValue) examples")
    }
}

extension DataOptions {
    /// Loads a data set without splitting it, its labels checked against a model's `classes` when
    /// given.
    static func loadDataset(_ data: String?, classes: Int? = nil) throws -> Dataset {
        do {
            return try DataDirectory.load(try DataDirectory.resolve(data, environment: ProcessInfo.processInfo.environment),
                                          classes: classes)
        } catch let error as DataError {
            throw ValidationError("\(error)")
        } catch let error as FileError {
            throw ValidationError("\(error)")
        }
    }
}

/// Refuses a model whose input or class count does not fit the data.
func checkModel(_ model: Model, fits examples: Examples) throws {
    guard model.inputShape.reduce(1, *) == examples.featureCount else {
        throw ValidationError("the model takes inputs \(model.inputShape); the data has \(examples.exampleShape)")
    }
    guard model.classes >= examples.classes else {
        throw ValidationError("the model has \(model.classes) classes; the data has \(examples.classes)")
    }
}
