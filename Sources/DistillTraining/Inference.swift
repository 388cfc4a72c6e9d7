import DistillCore
import DistillData
import DistillNN

/// Runs a frozen model in inference mode over every example of a set, in file order.
/// - Returns: logits `[count, model.classes]`, row-major.
public func inferLogits(model: Model, examples: Examples, batchSize: Int = 1000) throws -> [Float] {
    let batcher = try Batcher(examples: examples, batchSize: batchSize, shuffle: false, seed: 0)
    var logits = [Float](repeating: 0, count: examples.count * model.classes)
    var row = 0
    while let batch = batcher.next() {
        let out = model.forward(batch.inputs, mode: .inference)
        logits.withUnsafeMutableBufferPointer { dst in
            (dst.baseAddress! + row * model.classes).update(from: out.pointer, count: out.count)
        }
        row += batch.count
    }
    return logits
}
