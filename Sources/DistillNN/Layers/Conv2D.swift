import DistillCore

/// A 2-D convolution (cross-correlation, as PyTorch's `Conv2d`) by im2col and one GEMM per pass.
///
/// Shapes: input `[N, Cin, H, W]`, weight `[Cout, Cin, kh, kw]`, bias `[Cout]`, output
/// `[N, Cout, Ho, Wo]` with `Ho = (H + 2 padding - kh) / stride + 1` (likewise `Wo`).
/// With `K = Cin kh kw` and `P = Ho Wo`, the whole batch is unfolded into `col [K, N P]`, then
/// forward: `out [Cout, N P] = W [Cout, K] col`, permuted to NCHW with the bias added;
/// backward: `dW += dout col^T`, `db += row sums of dout`, `dcol = W^T dout`, folded back (col2im)
/// into `dx`.
public final class Conv2D: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter
    public let bias: Parameter
    public var computesInputGradient = true

    private var inputShape: [Int] = [0, 0, 0, 0]
    private var columns = Tensor(zeros: [0])           // [K, N P]
    private var product = Tensor(zeros: [0])           // [Cout, N P]: forward result, then dout
    private var output = Tensor(zeros: [0])            // [N, Cout, Ho, Wo]
    private var columnGradient = Tensor(zeros: [0])    // [K, N P]
    private var inputGradient = Tensor(zeros: [0])

    public init(inputChannels: Int, outputChannels: Int, kernelSize: (Int, Int), stride: Int = 1,
                padding: Int = 0, generator: inout SeededGenerator) {
        precondition(stride >= 1 && padding >= 0 && kernelSize.0 >= 1 && kernelSize.1 >= 1)
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelHeight = kernelSize.0
        self.kernelWidth = kernelSize.1
        self.stride = stride
        self.padding = padding
        let fanIn = inputChannels * kernelSize.0 * kernelSize.1
        weight = Parameter(name: "weight", value: Initialization.he.tensor(
            shape: [outputChannels, inputChannels, kernelSize.0, kernelSize.1], fanIn: fanIn,
            fanOut: outputChannels * kernelSize.0 * kernelSize.1, generator: &generator), isWeight: true)
        bias = Parameter(name: "bias", value: Tensor(zeros: [outputChannels]), isWeight: false)
    }

    public var parameters: [Parameter] { [weight, bias] }
    public var descriptor: String {
        "conv2d:\(inputChannels):\(outputChannels):\(kernelHeight)x\(kernelWidth):s\(stride):p\(padding)"
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 4, inputShape[1] == inputChannels else {
            throw ArchitectureError("\(descriptor) expects input [N, \(inputChannels), H, W], got \(inputShape)")
        }
        let ho = (inputShape[2] + 2 * padding - kernelHeight) / stride + 1
        let wo = (inputShape[3] + 2 * padding - kernelWidth) / stride + 1
        guard inputShape[2] + 2 * padding >= kernelHeight, inputShape[3] + 2 * padding >= kernelWidth else {
            throw ArchitectureError("\(descriptor): input \(inputShape[2])x\(inputShape[3]) is smaller than the kernel")
        }
        return [inputShape[0], outputChannels, ho, wo]
    }

    private var geometry: (n: Int, h: Int, w: Int, ho: Int, wo: Int, k: Int, p: Int) {
        let n = inputShape[0], h = inputShape[2], w = inputShape[3]
        let ho = (h + 2 * padding - kernelHeight) / stride + 1
        let wo = (w + 2 * padding - kernelWidth) / stride + 1
        return (n, h, w, ho, wo, inputChannels * kernelHeight * kernelWidth, ho * wo)
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        if input.shape != inputShape { inputShape = input.shape }
        let g = geometry
        let np = g.n * g.p
        columns.resize(to: [g.k, np])
        product.resize(to: [outputChannels, np])
        output.resize(to: [g.n, outputChannels, g.ho, g.wo])
        im2col(input.pointer)
        gemm(.none, .none, m: outputChannels, n: np, k: g.k,
             a: weight.value.pointer, lda: g.k, b: columns.pointer, ldb: np,
             beta: 0, c: product.pointer, ldc: np)
        // [Cout, N, P] -> [N, Cout, P], adding the bias.
        let src = SendablePointer(product.pointer), dst = SendablePointer(output.pointer)
        let b = SendablePointer(bias.value.pointer)
        let cout = outputChannels, p = g.p, n = g.n
        parallelFor(n * cout, costPerItem: p) { range in
            for item in range {
                let image = item / cout, c = item % cout
                let from = src.pointer + c * n * p + image * p, to = dst.pointer + item * p
                let bv = Float8(repeating: b[c])
                var j = 0
                while j + 8 <= p { store8(load8(from + j) + bv, to + j); j += 8 }
                while j < p { to[j] = from[j] + b[c]; j += 1 }
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let g = geometry
        let np = g.n * g.p, cout = outputChannels, p = g.p, n = g.n
        // dout: [N, Cout, P] -> [Cout, N P] (reusing the forward product buffer).
        let src = SendablePointer(outputGradient.pointer), dst = SendablePointer(product.pointer)
        parallelFor(n * cout, costPerItem: p) { range in
            for item in range {
                let image = item / cout, c = item % cout
                (dst.pointer + c * np + image * p).update(from: src.pointer + item * p, count: p)
            }
        }
        let (dW, betaW) = weight.accumulationTarget()
        gemm(.none, .transpose, m: cout, n: g.k, k: np,
             a: product.pointer, lda: np, b: columns.pointer, ldb: np,
             beta: betaW, c: dW.pointer, ldc: g.k)
        let (db, betaB) = bias.accumulationTarget()
        for c in 0..<cout {
            let s = Float(sum(product.pointer + c * np, np))
            db[c] = betaB == 0 ? s : db[c] + s
        }
        guard computesInputGradient else { return inputGradient }
        columnGradient.resize(to: [g.k, np])
        gemm(.transpose, .none, m: g.k, n: np, k: cout,
             a: weight.value.pointer, lda: g.k, b: product.pointer, ldb: np,
             beta: 0, c: columnGradient.pointer, ldc: np)
        inputGradient.resize(to: inputShape)
        col2im(into: inputGradient.pointer)
        return inputGradient
    }

    /// Unfolds the input into `columns[k, n P + oy Wo + ox] = x[n, c, oy s - pad + i, ox s - pad + j]`
    /// (zero outside the image), with `k = (c kh + i) kw + j`.
    private func im2col(_ x: UnsafePointer<Float>) {
        let g = geometry
        let np = g.n * g.p
        let cols = SendablePointer(columns.pointer), xp = SendablePointer(UnsafeMutablePointer(mutating: x))
        let kh = kernelHeight, kw = kernelWidth, s = stride, pad = padding, cin = inputChannels
        parallelFor(g.k * g.n, costPerItem: g.p) { range in
            for item in range {
                let k = item / g.n, image = item % g.n
                let c = k / (kh * kw), i = (k / kw) % kh, j = k % kw
                let plane = xp.pointer + (image * cin + c) * g.h * g.w
                let row = cols.pointer + k * np + image * g.p
                for oy in 0..<g.ho {
                    let y = oy * s - pad + i
                    let out = row + oy * g.wo
                    if y < 0 || y >= g.h { out.update(repeating: 0, count: g.wo); continue }
                    let line = plane + y * g.w
                    if s == 1 {
                        // x index = ox - pad + j: copy the in-range run, zero the edges.
                        let first = max(0, pad - j), last = min(g.wo, g.w + pad - j)
                        // Rows are short (the image width): explicit vector copies, not memcpy calls.
                        var ox = 0
                        while ox < min(first, g.wo) { out[ox] = 0; ox += 1 }
                        let source = line - pad + j
                        while ox + 8 <= last { store8(load8(source + ox), out + ox); ox += 8 }
                        while ox < last { out[ox] = source[ox]; ox += 1 }
                        while ox < g.wo { out[ox] = 0; ox += 1 }
                    } else {
                        for ox in 0..<g.wo {
                            let xx = ox * s - pad + j
                            out[ox] = (xx >= 0 && xx < g.w) ? line[xx] : 0
                        }
                    }
                }
            }
        }
    }

    /// Folds `columnGradient` back into `dx`, adding every column entry to the input element it
    /// was copied from. Parallel over (image, channel) planes, which receive disjoint writes.
    private func col2im(into dx: UnsafeMutablePointer<Float>) {
        let g = geometry
        let np = g.n * g.p
        let cols = SendablePointer(columnGradient.pointer), out = SendablePointer(dx)
        let kh = kernelHeight, kw = kernelWidth, s = stride, pad = padding, cin = inputChannels
        parallelFor(g.n * cin, costPerItem: kh * kw * g.p) { range in
            for item in range {
                let image = item / cin, c = item % cin
                let plane = out.pointer + item * g.h * g.w
                plane.update(repeating: 0, count: g.h * g.w)
                for i in 0..<kh {
                    for j in 0..<kw {
                        let k = (c * kh + i) * kw + j
                        let row = cols.pointer + k * np + image * g.p
                        for oy in 0..<g.ho {
                            let y = oy * s - pad + i
                            if y < 0 || y >= g.h { continue }
                            let line = plane + y * g.w
                            let from = row + oy * g.wo
                            if s == 1 {
                                let first = max(0, pad - j), last = min(g.wo, g.w + pad - j)
                                let target = line - pad + j
                                var ox = first
                                while ox + 8 <= last { store8(load8(target + ox) + load8(from + ox), target + ox); ox += 8 }
                                while ox < last { target[ox] += from[ox]; ox += 1 }
                            } else {
                                for ox in 0..<g.wo {
                                    let xx = ox * s - pad + j
                                    if xx >= 0 && xx < g.w { line[xx] += from[ox] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
