import DistillCore

/// Each position's vector next to its neighbours': the window of a window tagger (Collobert et
/// al. 2011), `[B, T, C] -> [B, T, (2r + 1) C]` with
/// `out[b, t, k C ..< (k + 1) C] = x[b, t + k - r]` for `k` in `0...2r`, and zeros where
/// `t + k - r` falls outside `0..<T`. Padded positions are zero vectors already
/// (`FeatureEmbedding`), so a window never sees past its sentence's words. Backward adds each
/// slice of the output gradient back to the position it came from.
public final class WordWindow: Layer {
    public let radius: Int
    public var computesInputGradient = true
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])

    public init(radius: Int) {
        precondition(radius >= 0)
        self.radius = radius
    }

    public var descriptor: String { "window:\(radius)" }

    /// Positions in a window.
    public var width: Int { 2 * radius + 1 }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3 else {
            throw ArchitectureError("\(descriptor) expects [B, T, C], got \(inputShape)")
        }
        return [inputShape[0], inputShape[1], width * inputShape[2]]
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        let (b, t, c) = (input.shape[0], input.shape[1], input.shape[2])
        output.resize(to: [b, t, width * c])
        for n in 0..<b {
            for p in 0..<t {
                let y = output.pointer + (n * t + p) * width * c
                for k in 0..<width {
                    let q = p + k - radius
                    if q >= 0 && q < t {
                        (y + k * c).update(from: input.pointer + (n * t + q) * c, count: c)
                    } else {
                        (y + k * c).update(repeating: 0, count: c)
                    }
                }
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        let (b, t) = (outputGradient.shape[0], outputGradient.shape[1])
        let c = outputGradient.shape[2] / width
        inputGradient.resize(to: [b, t, c])
        inputGradient.fill(0)
        for n in 0..<b {
            for p in 0..<t {
                let dy = outputGradient.pointer + (n * t + p) * width * c
                for k in 0..<width {
                    let q = p + k - radius
                    guard q >= 0 && q < t else { continue }
                    let dx = inputGradient.pointer + (n * t + q) * c
                    for j in 0..<c { dx[j] += dy[k * c + j] }
                }
            }
        }
        return inputGradient
    }
}
