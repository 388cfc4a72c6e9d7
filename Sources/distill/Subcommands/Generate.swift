import ArgumentParser
import DistillKit
import Foundation

/// `distill generate`: text sampled from a language model over bytes.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Continue a prompt with bytes sampled from a language model (a transformer trained on text).",
        discussion: """
            Writes the prompt and the bytes drawn to standard output, as bytes. Each byte is drawn from \
            softmax(logits / T) given the last context bytes; the same seed gives the same text.
            """)

    @Option(help: "The language model (.safetensors).") var model: String
    @Option(help: "The text to continue.") var prompt: String
    @Option(help: "How many bytes to draw.") var length: Int = 200
    @Option(help: "Sampling temperature T (> 0): below 1 sharper, above 1 flatter.")
    var temperature: Float = 1
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func validate() throws {
        guard !prompt.isEmpty else { throw ValidationError("--prompt must not be empty") }
        guard length >= 0, length <= 1 << 24 else {
            throw ValidationError("--length must be from 0 to 16777216, got \(length)")
        }
        guard temperature.isFinite, temperature > 0 else {
            throw ValidationError("--temperature must be > 0, got \(temperature)")
        }
    }

    func run() throws {
        let m = try Model.load(from: model)
        try m.checkByteLanguageModel(model)
        var generator = SeededGenerator(seed: seed)
        let bytes = Array(prompt.utf8)
        let drawn = generateText(
            model: m, prompt: bytes, length: length, temperature: temperature, generator: &generator
        )
        FileHandle.standardOutput.write(Data(bytes + drawn + [10]))
    }
}
