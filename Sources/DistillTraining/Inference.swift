import DistillCore
import DistillData
import DistillFormats
import DistillNN

/// Runs a frozen model in inference mode over every example of a set, in file order.
/// - Returns: logits `[count * model.positions, model.classes]`, row-major (a sequence model's
///   rows are its examples' positions, in order).
public func inferLogits(model: Model, examples: Examples, batchSize: Int = 1000) throws -> [Float] {
    let batcher = try Batcher(examples: examples, batchSize: batchSize, shuffle: false, seed: 0)
    let rowsPerExample = model.positions * model.classes
    var logits = [Float](repeating: 0, count: examples.count * rowsPerExample)
    var example = 0
    while let batch = batcher.next() {
        let out = model.forward(batch.inputs, mode: .inference)
        logits.withUnsafeMutableBufferPointer { dst in
            (dst.baseAddress! + example * rowsPerExample).update(
                from: out.pointer, count: out.count)
        }
        example += batch.count
    }
    return logits
}

extension Model {
    /// Refuses examples this model cannot take: another number of values per example, or labels of
    /// more classes than it has.
    /// - Throws: `TrainingError.incompatible` saying what differs.
    public func check(fits examples: Examples) throws {
        guard inputShape.reduce(1, *) == examples.featureCount else {
            throw TrainingError.incompatible(
                "the model takes inputs \(inputShape); the data has \(examples.exampleShape)")
        }
        guard classes >= examples.classes else {
            throw TrainingError.incompatible(
                "the model has \(classes) classes; the data has \(examples.classes)")
        }
    }
}

extension Examples {
    /// Unlabelled inputs for `model` from an NPY file (any shape with the model's values per
    /// example; uint8 or float) or an IDX file of images.
    /// - Throws: `FileError` naming the file when it cannot be read or its shape does not fit.
    public static func read(inputs path: String, for model: Model) throws -> Examples {
        let features = model.inputShape.reduce(1, *)
        let bytes = try readFileBytes(path)
        let inputs: Inputs
        let shape: [Int]
        if bytes.starts(with: NPY.magicBytes) {
            let array = try NPY.parse(bytes, path: path)
            (inputs, shape) = (
                array.uint8Values.map { .bytes($0) } ?? .floats(array.floats()), array.shape
            )
            guard let n = shape.first, array.count == n * features else {
                throw FileError(
                    path, "inputs have shape \(shape); the model takes [N] + \(model.inputShape)")
            }
        } else {
            let idx = try IDX.parse(bytes, path: path)
            (inputs, shape) = (.bytes(idx.bytes), idx.shape)
            guard let n = shape.first, idx.bytes.count == n * features else {
                throw FileError(
                    path, "images have shape \(shape); the model takes [N] + \(model.inputShape)")
            }
        }
        return Examples(
            inputs: inputs, exampleShape: model.inputShape, labels: nil, classes: model.classes,
            normalization: model.normalization)
    }
}

extension Model {
    /// Refuses a model that is not a language model over bytes (a network starting with a token
    /// embedding, 256 classes), which text needs.
    /// - Parameter name: how the model is named in the error (its file, say).
    /// - Throws: `TrainingError.incompatible`.
    public func checkByteLanguageModel(_ name: String = "the model") throws {
        guard network.layers.first is Embedding, classes == TextDataset.classes else {
            throw TrainingError.incompatible(
                "text needs a language model over bytes (\(TextDataset.classes) classes, --arch transformer:...); \(name) takes \(inputShape) with \(classes) classes"
            )
        }
    }
}
