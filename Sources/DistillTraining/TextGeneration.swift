import DistillCore
import DistillNN

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Samples bytes from a language model over bytes, one at a time.
///
/// Each step runs the model (inference mode) on the last `context` bytes of the text so far,
/// placed at the start of the window and padded after them (a causal model's prediction at the
/// last real byte does not see the padding), and draws the next byte from `softmax(logits / T)`
/// at that position with `generator`.
/// - Parameters:
///   - prompt: the text to continue (at least one byte).
///   - temperature: T > 0; small T approaches the most likely byte, large T flattens.
/// - Returns: the `length` bytes drawn (without the prompt).
public func generateText(
    model: Model, prompt: [UInt8], length: Int, temperature: Float, generator: inout SeededGenerator
) -> [UInt8] {
    precondition(!prompt.isEmpty && length >= 0 && temperature > 0 && model.classes == 256)
    let context = model.inputShape[0]
    var text = prompt
    let window = Tensor(zeros: [1, context])
    var probabilities = [Double](repeating: 0, count: model.classes)
    for _ in 0..<length {
        let recent = text.suffix(context)
        window.fill(0)
        for (i, byte) in recent.enumerated() { window[i] = Float(byte) }
        let logits = model.forward(window, mode: .inference)
        let row = logits.pointer + (recent.count - 1) * model.classes
        var maximum = -Float.infinity
        for c in 0..<model.classes { maximum = max(maximum, row[c]) }
        var sum = 0.0
        for c in 0..<model.classes {
            probabilities[c] = exp(Double((row[c] - maximum) / temperature))
            sum += probabilities[c]
        }
        var draw = Double(generator.nextUniform()) * sum
        var next = model.classes - 1
        for c in 0..<model.classes {
            draw -= probabilities[c]
            if draw < 0 {
                next = c
                break
            }
        }
        text.append(UInt8(next))
    }
    return Array(text.dropFirst(prompt.count))
}
