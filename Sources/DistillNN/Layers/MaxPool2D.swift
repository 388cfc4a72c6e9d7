import DistillCore

/// 2-D max pooling over `kernel x kernel` windows moved by `stride` (no padding; a partial window
/// at the edge is dropped, as PyTorch's default).
///
/// Shapes: input `[N, C, H, W]`, output `[N, C, (H - k) / s + 1, (W - k) / s + 1]`.
/// Backward routes each output gradient to the input element that was the maximum (the first one
/// on ties, as PyTorch).
public final class MaxPool2D: Layer {
    public let kernel: Int
    public let stride: Int
    public var computesInputGradient = true

    private var inputShape: [Int] = [0, 0, 0, 0]
    private var output = Tensor(zeros: [0])
    private var argmax: [Int32] = []
    private var inputGradient = Tensor(zeros: [0])

    public init(kernel: Int, stride: Int? = nil) {
        precondition(kernel >= 1)
        self.kernel = kernel
        self.stride = stride ?? kernel
    }

    public var descriptor: String { "maxpool2d:\(kernel):s\(stride)" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 4, inputShape[2] >= kernel, inputShape[3] >= kernel else {
            throw ArchitectureError("\(descriptor) expects input [N, C, H, W] with H, W >= \(kernel), got \(inputShape)")
        }
        return [inputShape[0], inputShape[1], (inputShape[2] - kernel) / stride + 1, (inputShape[3] - kernel) / stride + 1]
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        if input.shape != inputShape { inputShape = input.shape }
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let ho = (h - kernel) / stride + 1, wo = (w - kernel) / stride + 1
        output.resize(to: [n, c, ho, wo])
        if argmax.count < output.count { argmax = [Int32](repeating: 0, count: output.count) }
        let x = SendablePointer(input.pointer), y = SendablePointer(output.pointer)
        let k = kernel, s = stride
        argmax.withUnsafeMutableBufferPointer { am in
            let a = SendablePointer(am.baseAddress!)
            parallelFor(n * c, costPerItem: h * w) { range in
                for plane in range {
                    let xin = x.pointer + plane * h * w
                    let yout = y.pointer + plane * ho * wo
                    let aout = a.pointer + plane * ho * wo
                    for oy in 0..<ho {
                        for ox in 0..<wo {
                            var best = oy * s * w + ox * s
                            var bestValue = xin[best]
                            for i in 0..<k {
                                let rowStart = (oy * s + i) * w + ox * s
                                for j in 0..<k where xin[rowStart + j] > bestValue {
                                    best = rowStart + j
                                    bestValue = xin[best]
                                }
                            }
                            yout[oy * wo + ox] = bestValue
                            aout[oy * wo + ox] = Int32(best)
                        }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard computesInputGradient else { return inputGradient }
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let outPlane = output.count / max(n * c, 1)
        inputGradient.resize(to: inputShape)
        let dx = SendablePointer(inputGradient.pointer), dy = SendablePointer(outputGradient.pointer)
        argmax.withUnsafeBufferPointer { am in
            let a = SendablePointer(UnsafeMutablePointer(mutating: am.baseAddress!))
            parallelFor(n * c, costPerItem: h * w) { range in
                for plane in range {
                    let din = dx.pointer + plane * h * w
                    din.update(repeating: 0, count: h * w)
                    for o in 0..<outPlane {
                        din[Int(a[plane * outPlane + o])] += dy[plane * outPlane + o]
                    }
                }
            }
        }
        return inputGradient
    }
}
