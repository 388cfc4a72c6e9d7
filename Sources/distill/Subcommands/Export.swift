import ArgumentParser
import DistillKit
import Foundation

/// `distill export`: a model out to ONNX.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a model to ONNX (opset 17) for onnxruntime and other engines.",
        discussion: """
            Input 'input': float32 [batch, ...input shape] of raw values (pixels 0-255), normalised in the \
            graph as distill does. Outputs 'logits' [batch, classes] and 'probabilities' (softmax at T = 1). \
            Layers map to Gemm, Conv, MaxPool, Relu and Flatten; dropout is left out (inference). \
            A transformer takes token ids [batch, context] (as float32) and gives logits and \
            probabilities [batch, context, classes], position i predicting the token after it: \
            Gather, LayerNormalization, MatMul, Softmax over the keys with a causal mask, Erf (or Tanh).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case onnx }

    @Option(help: "The model (.safetensors).") var model: String
    @Option(help: "The format to write.") var format: Format = .onnx
    @Option(help: "Where to write the exported model.") var out: String

    func validate() throws { try checkOutputPath(out) }

    func run() throws {
        let m = try Model.load(from: model)
        guard !m.isTagger else {
            throw ValidationError(
                "\(model) is a tagger; ONNX export takes classifiers and language models (a tagger's word features are hashed outside its network)"
            )
        }
        let bytes = m.onnx(name: String(model.split(separator: "/").last ?? Substring(model)))
        try AtomicFile.write(bytes, to: out)
        let sequence = m.isTransformer
        printError(
            "wrote \(out): ONNX opset \(ONNX.opset), \(m.parameterCount) parameters, input [batch, \(m.inputShape.map(String.init).joined(separator: ", "))] \(sequence ? "token ids" : "raw values"), outputs logits and probabilities [batch, \(sequence ? "\(m.inputShape[0]), " : "")\(m.classes)]"
        )
    }
}
