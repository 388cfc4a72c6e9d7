import ArgumentParser
import DistillKit
import Foundation

/// `distill inspect MODEL`: what a model file holds.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Print a model's architecture, its parameters (in all and per layer or block), file size and recorded metadata."
    )

    @Argument(help: "A model file (.safetensors) written by distill.")
    var model: String

    func run() throws {
        let loaded = try Model.load(from: model)
        let size = (try? FileManager.default.attributesOfItem(atPath: model)[.size] as? Int) ?? 0
        print("model:          \(model)")
        print("architecture:   \(loaded.architecture.isEmpty ? "(custom)" : loaded.architecture)")
        print("layers:         \(loaded.network.descriptor)")
        for (index, layer) in loaded.network.layers.enumerated() where !layer.parameters.isEmpty {
            let count = layer.parameters.reduce(0) { $0 + $1.value.count }
            print("  layers.\(index)  \(layer.descriptor): \(count) parameters")
        }
        print(
            "input shape:    \(loaded.inputShape.map(String.init).joined(separator: "x")), classes: \(loaded.classes)"
        )
        print("normalization:  \(loaded.normalization)")
        print("parameters:     \(loaded.parameterCount)")
        print("file size:      \(size) bytes")
        for key in loaded.metadata.keys.sorted() {
            print(
                "\((key + ":").padding(toLength: max(16, key.count + 2), withPad: " ", startingAt: 0))\(loaded.metadata[key]!)"
            )
        }
    }
}
