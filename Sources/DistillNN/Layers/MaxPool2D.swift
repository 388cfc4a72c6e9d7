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
            throw ArchitectureError(
                "\(descriptor) expects input [N, C, H, W] with H, W >= \(kernel), got \(inputShape)"
            )
        }
        return [
            inputShape[0], inputShape[1], (inputShape[2] - kernel) / stride + 1,
            (inputShape[3] - kernel) / stride + 1,
        ]
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        if input.shape != inputShape { inputShape = input.shape }
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let ho = (h - kernel) / stride + 1
        let wo = (w - kernel) / stride + 1
        output.resize(to: [n, c, ho, wo])
        if argmax.count < output.count { argmax = [Int32](repeating: 0, count: output.count) }
        let twoByTwo = kernel == 2 && stride == 2
        let x = SendablePointer(input.pointer)
        let y = SendablePointer(output.pointer)
        let k = kernel
        let s = stride
        do {
            argmax.withUnsafeMutableBufferPointer { am in
                let a = SendablePointer(am.baseAddress!)
                parallelFor(n * c, costPerItem: h * w) { range in
                    for plane in range {
                        let xin = x.pointer + plane * h * w
                        let yout = y.pointer + plane * ho * wo
                        let aout = a.pointer + plane * ho * wo
                        if twoByTwo {
                            pool2x2(
                                xin, height: h, width: w, outputHeight: ho, outputWidth: wo,
                                into: yout, argmax: aout)
                        } else {
                            poolGeneral(
                                xin, width: w, kernel: k, stride: s, outputHeight: ho,
                                outputWidth: wo,
                                into: yout, argmax: aout)
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
        let dx = SendablePointer(inputGradient.pointer)
        let dy = SendablePointer(outputGradient.pointer)
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

/// 2x2, stride 2 max pooling of one plane, eight outputs at a time, without data-dependent
/// branches (on real data the comparisons are coin flips). Ties keep the first element in
/// row-major order (top-left, top-right, bottom-left, bottom-right), as the general path.
///
/// A group of fewer than eight outputs at the end of a row (all of a row when `wo < 8`, as for
/// the CNN's 14-wide maps; six of the 28-wide ones' fourteen) still loads sixteen inputs from each row when they lie inside
/// the plane, reading into the rows below, and still stores eight outputs when they lie inside
/// the plane's outputs: the extra lanes are discarded, or overwritten by later rows. Only the
/// plane's last groups go through a padded buffer and lane-by-lane stores.
@inline(__always)
private func pool2x2(
    _ x: UnsafeMutablePointer<Float>, height h: Int, width w: Int, outputHeight ho: Int,
    outputWidth wo: Int, into y: UnsafeMutablePointer<Float>,
    argmax indices: UnsafeMutablePointer<Int32>
) {
    @inline(__always) func evens(_ a: Float8, _ b: Float8) -> Float8 {
        Float8(a[0], a[2], a[4], a[6], b[0], b[2], b[4], b[6])
    }
    @inline(__always) func odds(_ a: Float8, _ b: Float8) -> Float8 {
        Float8(a[1], a[3], a[5], a[7], b[1], b[3], b[5], b[7])
    }
    let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
    let one = SIMD8<Int32>(repeating: 1)
    let down = SIMD8<Int32>(repeating: Int32(w))
    let diagonal = down &+ one
    var padded = (Float8.zero, Float8.zero, Float8.zero, Float8.zero)
    for oy in 0..<ho {
        let top = x + 2 * oy * w
        let bottom = top + w
        var ox = 0
        while ox < wo {
            let t0: Float8
            let t1: Float8
            let b0: Float8
            let b1: Float8
            if (2 * oy + 1) * w + 2 * ox + 16 <= h * w {
                t0 = load8(top + 2 * ox)
                t1 = load8(top + 2 * ox + 8)
                b0 = load8(bottom + 2 * ox)
                b1 = load8(bottom + 2 * ox + 8)
            } else {
                let count = 2 * (wo - ox)
                withUnsafeMutableBytes(of: &padded) { raw in
                    let p = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                    p.update(repeating: -.infinity, count: 32)
                    p.update(from: top + 2 * ox, count: count)
                    (p + 16).update(from: bottom + 2 * ox, count: count)
                }
                (t0, t1, b0, b1) = padded
            }
            var best = evens(t0, t1)
            var offset = SIMD8<Int32>(repeating: 0)
            let tr = odds(t0, t1)
            let bl = evens(b0, b1)
            let br = odds(b0, b1)
            var m = tr .> best
            best.replace(with: tr, where: m)
            offset.replace(with: one, where: m)
            m = bl .> best
            best.replace(with: bl, where: m)
            offset.replace(with: down, where: m)
            m = br .> best
            best.replace(with: br, where: m)
            offset.replace(with: diagonal, where: m)
            let index = SIMD8<Int32>(repeating: Int32(2 * oy * w + 2 * ox)) &+ lanes &+ offset
            let count = min(8, wo - ox)
            if oy * wo + ox + 8 <= ho * wo {
                store8(best, y + oy * wo + ox)
                UnsafeMutableRawPointer(indices + oy * wo + ox).storeBytes(
                    of: index, as: SIMD8<Int32>.self)
            } else {
                for q in 0..<count {
                    y[oy * wo + ox + q] = best[q]
                    indices[oy * wo + ox + q] = index[q]
                }
            }
            ox += 8
        }
    }
}

/// Any window and stride: the first maximum of each window, in row-major order.
@inline(__always)
private func poolGeneral(
    _ x: UnsafeMutablePointer<Float>, width w: Int, kernel k: Int, stride s: Int,
    outputHeight ho: Int, outputWidth wo: Int,
    into y: UnsafeMutablePointer<Float>, argmax indices: UnsafeMutablePointer<Int32>
) {
    for oy in 0..<ho {
        for ox in 0..<wo {
            var best = oy * s * w + ox * s
            var bestValue = x[best]
            for i in 0..<k {
                let rowStart = (oy * s + i) * w + ox * s
                for j in 0..<k where x[rowStart + j] > bestValue {
                    best = rowStart + j
                    bestValue = x[best]
                }
            }
            y[oy * wo + ox] = bestValue
            indices[oy * wo + ox] = Int32(best)
        }
    }
}
