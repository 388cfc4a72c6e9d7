import DistillCore

/// A 2-D convolution (cross-correlation, as PyTorch's `Conv2d`) by im2col and GEMM.
///
/// Shapes: input `[N, Cin, H, W]`, weight `[Cout, Cin, kh, kw]`, bias `[Cout]`, output
/// `[N, Cout, Ho, Wo]` with `Ho = (H + 2 padding - kh) / stride + 1` (likewise `Wo`).
/// With `K = Cin kh kw` and `P = Ho Wo`, a chunk of `m` images is unfolded into `col [K, m P]`, then
/// forward: `out [Cout, m P] = W [Cout, K] col`, permuted to NCHW with the bias added (or, channel-major,
/// in place: see below);
/// backward: `dW += dout col^T`, `db += row sums of dout`, `dcol = W^T dout`, folded back (col2im)
/// into `dx`.
///
/// Inside a `Sequential`, a convolution whose output goes (through pooling and ReLU only) to
/// another convolution or to `Flatten` hands it over channel-major: memory ordered `[Cout, N, Ho, Wo]`
/// while the shape still reads `[N, Cout, Ho, Wo]` (the `ActivationLayout` the `Sequential` plans
/// and passes to `forward(_:mode:layout:)`; called on its own, a convolution is NCHW both ways). That is the GEMM's own layout, `[Cout, m P]` for a chunk
/// of `m` images, so the GEMM writes the output in place, starting from the bias (beta 1), and the
/// backward pass reads the output gradient in place: no permutation either way. The values are
/// NCHW's, except that the bias is added before the product instead of after it (the same sum
/// when the GEMM takes `K` in one block, as for the CNNs here: the tests check it bit for bit).
///
/// The GEMMs run on chunks of images whose columns (or products, if larger) take about 4 MB, so
/// that a chunk's columns, products and gradients are still in cache when the next step reads
/// them. The products decide where K is small: for a first layer, K = 9 and Cout = 32, a product
/// is 3.6 times its columns, and sizing by the columns alone made the chunk the whole batch.
///
/// A training forward pass keeps every chunk's columns for the backward pass when the whole
/// batch's columns fit in `keptColumnsBytes` (64 MB; the CNN teacher's second layer takes 29 MB at
/// batch 128). Beyond that, and in inference, one chunk's buffer serves them all, and the backward
/// pass unfolds each chunk again from the input, except the last one, whose columns are still in
/// the buffer. Keeping costs the forward pass its writes to memory instead of cache; unfolding
/// again costs the backward pass a second im2col, which slows several times more than the rest
/// when other tenants load the machine: kept, the CNN's step was 2 to 9% slower in quiet minutes
/// and 4 to 27% faster in busy ones on the project's shared machine, faster by median and mean
/// (BENCHMARKS.md).
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
    /// The layout of the last forward pass, which its backward pass follows: whether the input is
    /// `[Cin, N, H, W]` and the output `[Cout, N, Ho, Wo]` in memory.
    private var inputIsChannelMajor = false
    private var outputIsChannelMajor = false

    /// The target size of one chunk's columns or products, whichever is larger, in bytes (tests
    /// lower it to force several chunks).
    var chunkBytes = 4 << 20
    /// The most the columns of a whole batch may take, in bytes, to be kept from the forward pass
    /// for the backward pass (tests and the benchmark's `--unfold-columns` set 0 to unfold again).
    package var keptColumnsBytes = 64 << 20

    private var inputShape: [Int] = [0, 0, 0, 0]
    private var input = Tensor(zeros: [0])  // the last training forward pass's input
    private var columns = Tensor(zeros: [0])  // [K, N P] when kept, else [K, m P]: one chunk
    private var columnsKept = false  // by the last forward pass
    // [Cout, m P]: forward result, then dout (NCHW output only)
    private var product = Tensor(zeros: [0])
    private var output = Tensor(zeros: [0])  // [N, Cout, Ho, Wo]
    private var columnGradient = Tensor(zeros: [0])  // [K, m P]
    private var inputGradient = Tensor(zeros: [0])

    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: (Int, Int), stride: Int = 1,
        padding: Int = 0, generator: inout SeededGenerator
    ) {
        precondition(stride >= 1 && padding >= 0 && kernelSize.0 >= 1 && kernelSize.1 >= 1)
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelHeight = kernelSize.0
        self.kernelWidth = kernelSize.1
        self.stride = stride
        self.padding = padding
        let fanIn = inputChannels * kernelSize.0 * kernelSize.1
        weight = Parameter(
            name: "weight",
            value: Initialization.he.tensor(
                shape: [outputChannels, inputChannels, kernelSize.0, kernelSize.1], fanIn: fanIn,
                fanOut: outputChannels * kernelSize.0 * kernelSize.1, generator: &generator),
            isWeight: true)
        bias = Parameter(name: "bias", value: Tensor(zeros: [outputChannels]), isWeight: false)
    }

    public var parameters: [Parameter] { [weight, bias] }
    public var descriptor: String {
        "conv2d:\(inputChannels):\(outputChannels):\(kernelHeight)x\(kernelWidth):s\(stride):p\(padding)"
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 4, inputShape[1] == inputChannels else {
            throw ArchitectureError(
                "\(descriptor) expects input [N, \(inputChannels), H, W], got \(inputShape)")
        }
        guard inputShape[2] + 2 * padding >= kernelHeight,
            inputShape[3] + 2 * padding >= kernelWidth
        else {
            throw ArchitectureError(
                "\(descriptor): input \(inputShape[2])x\(inputShape[3]) is smaller than the kernel")
        }
        let ho = (inputShape[2] + 2 * padding - kernelHeight) / stride + 1
        let wo = (inputShape[3] + 2 * padding - kernelWidth) / stride + 1
        return [inputShape[0], outputChannels, ho, wo]
    }

    /// Images per chunk for the last input shape seen (for tests).
    var chunkImages: Int { geometry.chunk }

    /// Whether the last forward pass kept the columns of the whole batch (for tests).
    var keptColumns: Bool { columnsKept }

    private struct Geometry {
        let n: Int, h: Int, w: Int, ho: Int, wo: Int, k: Int, p: Int, chunk: Int
        var chunks: Int { (n + chunk - 1) / chunk }
        func images(_ c: Int) -> Range<Int> { (c * chunk)..<min(n, (c + 1) * chunk) }
    }

    private var geometry: Geometry {
        let n = inputShape[0]
        let h = inputShape[2]
        let w = inputShape[3]
        let ho = (h + 2 * padding - kernelHeight) / stride + 1
        let wo = (w + 2 * padding - kernelWidth) / stride + 1
        let k = inputChannels * kernelHeight * kernelWidth
        let p = ho * wo
        let chunk = max(1, min(n, chunkBytes / max(max(k, outputChannels) * p * 4, 1)))
        return Geometry(n: n, h: h, w: w, ho: ho, wo: wo, k: k, p: p, chunk: chunk)
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        forward(input, mode: mode, layout: .nchw)
    }

    public func forward(_ input: Tensor, mode: Mode, layout: ActivationLayout) -> Tensor {
        (inputIsChannelMajor, outputIsChannelMajor) = (
            layout.inputIsChannelMajor, layout.outputIsChannelMajor
        )
        if input.shape != inputShape { inputShape = input.shape }
        if mode == .training { self.input = input }  // for the backward pass, as Linear keeps it
        let g = geometry
        columnsKept = mode == .training && g.k * g.n * g.p * 4 <= keptColumnsBytes
        columns.resize(to: [g.k, (columnsKept ? g.n : g.chunk) * g.p])
        if !outputIsChannelMajor { product.resize(to: [outputChannels, g.chunk * g.p]) }
        output.resize(to: [g.n, outputChannels, g.ho, g.wo])
        let cout = outputChannels
        let p = g.p
        for c in 0..<g.chunks {
            let images = g.images(c)
            let mp = images.count * p
            let ld = g.chunk * p
            let (cols, colsStride) = chunkColumns(images, g)
            im2col(input.pointer, images: images, into: cols, rowStride: colsStride)
            if outputIsChannelMajor {
                // Channel ch of these images is one run of the output: the bias, then the product
                // added to it by the GEMM.
                let out = SendablePointer(output.pointer + images.lowerBound * p)
                let b = SendablePointer(bias.value.pointer)
                let stride = g.n * p
                parallelFor(cout, costPerItem: mp) { range in
                    for ch in range { fill(out.pointer + ch * stride, mp, with: b[ch]) }
                }
                gemm(
                    .none, .none, m: cout, n: mp, k: g.k,
                    a: weight.value.pointer, lda: g.k, b: cols, ldb: colsStride,
                    beta: 1, c: out.pointer, ldc: stride)
                continue
            }
            gemm(
                .none, .none, m: cout, n: mp, k: g.k,
                a: weight.value.pointer, lda: g.k, b: cols, ldb: colsStride,
                beta: 0, c: product.pointer, ldc: ld)
            // [Cout, m, P] -> [m, Cout, P] of the output, adding the bias.
            let src = SendablePointer(product.pointer)
            let dst = SendablePointer(output.pointer)
            let b = SendablePointer(bias.value.pointer)
            let first = images.lowerBound
            parallelFor(images.count * cout, costPerItem: p) { range in
                for item in range {
                    let local = item / cout
                    let ch = item % cout
                    let from = src.pointer + ch * ld + local * p
                    let to = dst.pointer + ((first + local) * cout + ch) * p
                    let bv = Float8(repeating: b[ch])
                    var j = 0
                    while j + 8 <= p {
                        store8(load8(from + j) + bv, to + j)
                        j += 8
                    }
                    while j < p {
                        to[j] = from[j] + b[ch]
                        j += 1
                    }
                }
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let g = geometry
        let cout = outputChannels
        let p = g.p
        let (dW, betaW) = weight.accumulationTarget()
        let (db, betaB) = bias.accumulationTarget()
        if betaB == 0 {
            db.fill(0)
        } else if betaB != 1 {
            for j in 0..<cout { db[j] *= betaB }
        }
        if computesInputGradient {
            columnGradient.resize(to: [g.k, g.chunk * p])
            inputGradient.resize(to: inputShape)
        }
        // Walk the chunks backwards: unless all were kept, the last chunk's columns are still in
        // the buffer.
        for c in (0..<g.chunks).reversed() {
            let images = g.images(c)
            let mp = images.count * p
            let ld = g.chunk * p
            let (cols, colsStride) = chunkColumns(images, g)
            if !columnsKept && c != g.chunks - 1 {
                im2col(input.pointer, images: images, into: cols, rowStride: colsStride)
            }
            // dout as [Cout, m P]: in place when channel-major, else permuted from [m, Cout, P]
            // into `product`. Each channel is summed for the bias gradient, plane by plane.
            let src = SendablePointer(outputGradient.pointer)
            let dbp = SendablePointer(db.pointer)
            let dout = SendablePointer(
                outputIsChannelMajor
                    ? outputGradient.pointer + images.lowerBound * p : product.pointer)
            let doutStride = outputIsChannelMajor ? g.n * p : ld
            let first = images.lowerBound
            let count = images.count
            let inPlace = outputIsChannelMajor
            parallelFor(cout, costPerItem: count * p) { range in
                for ch in range {
                    var acc = 0.0
                    for local in 0..<count {
                        let plane = dout.pointer + ch * doutStride + local * p
                        if !inPlace {
                            copy(src.pointer + ((first + local) * cout + ch) * p, to: plane, p)
                        }
                        acc += planeSum(plane, p)
                    }
                    dbp[ch] += Float(acc)
                }
            }
            gemm(
                .none, .transpose, m: cout, n: g.k, k: mp,
                a: dout.pointer, lda: doutStride, b: cols, ldb: colsStride,
                beta: c == g.chunks - 1 ? betaW : 1, c: dW.pointer, ldc: g.k)
            guard computesInputGradient else { continue }
            gemm(
                .transpose, .none, m: g.k, n: mp, k: cout,
                a: weight.value.pointer, lda: g.k, b: dout.pointer, ldb: doutStride,
                beta: 0, c: columnGradient.pointer, ldc: ld)
            col2im(
                columnGradient.pointer, rowStride: ld, images: images, into: inputGradient.pointer)
        }
        return inputGradient
    }

    /// Where the columns of `images` go, and their row stride: their own columns of the whole
    /// batch's when kept, else the one chunk's buffer.
    private func chunkColumns(_ images: Range<Int>, _ g: Geometry) -> (
        UnsafeMutablePointer<Float>, Int
    ) {
        columnsKept
            ? (columns.pointer + images.lowerBound * g.p, g.n * g.p)
            : (columns.pointer, g.chunk * g.p)
    }

    /// How far apart, in planes, consecutive images and consecutive channels of the input are.
    private func planeStrides(_ g: Geometry) -> (image: Int, channel: Int) {
        inputIsChannelMajor ? (1, g.n) : (inputChannels, 1)
    }

    /// Unfolds images `images` of the input into
    /// `cols[k, (n - first) P + oy Wo + ox] = x[n, c, oy s - pad + i, ox s - pad + j]` (zero outside
    /// the image), with `k = (c kh + i) kw + j` and rows `rowStride` apart.
    private func im2col(
        _ x: UnsafePointer<Float>, images: Range<Int>, into columns: UnsafeMutablePointer<Float>,
        rowStride ld: Int
    ) {
        let g = geometry
        let cols = SendablePointer(columns)
        let xp = SendablePointer(UnsafeMutablePointer(mutating: x))
        let kh = kernelHeight
        let kw = kernelWidth
        let s = stride
        let pad = padding
        let first = images.lowerBound
        let count = images.count
        let sameSize = s == 1 && g.ho == g.h && g.wo == g.w
        let planes = planeStrides(g)
        parallelFor(g.k * count, costPerItem: g.p) { range in
            for item in range {
                let k = item / count
                let local = item % count
                let c = k / (kh * kw)
                let i = (k / kw) % kh
                let j = k % kw
                let plane =
                    xp.pointer + ((first + local) * planes.image + c * planes.channel) * g.h * g.w
                let row = cols.pointer + k * ld + local * g.p
                if sameSize {
                    // The row is the plane shifted by (i - pad, j - pad): one contiguous copy, then
                    // the rows and columns that fall outside the image zeroed.
                    let shift = Shift(i - pad, j - pad, h: g.h, w: g.w)
                    row.update(repeating: 0, count: shift.copied.lowerBound)
                    copy(
                        plane + shift.copied.lowerBound + shift.offset,
                        to: row + shift.copied.lowerBound, shift.copied.count)
                    (row + shift.copied.upperBound).update(
                        repeating: 0, count: g.p - shift.copied.upperBound)
                    shift.zeroEdgeColumns(row)
                    continue
                }
                for oy in 0..<g.ho {
                    let y = oy * s - pad + i
                    let out = row + oy * g.wo
                    if y < 0 || y >= g.h {
                        out.update(repeating: 0, count: g.wo)
                        continue
                    }
                    let line = plane + y * g.w
                    if s == 1 {
                        // x index = ox - pad + j: copy the in-range run, zero the edges. Rows are
                        // short (the image width): explicit vector copies, not memcpy calls.
                        let firstX = max(0, pad - j)
                        let last = min(g.wo, g.w + pad - j)
                        var ox = 0
                        while ox < min(firstX, g.wo) {
                            out[ox] = 0
                            ox += 1
                        }
                        let source = line - pad + j
                        while ox + 8 <= last {
                            store8(load8(source + ox), out + ox)
                            ox += 8
                        }
                        while ox < last {
                            out[ox] = source[ox]
                            ox += 1
                        }
                        while ox < g.wo {
                            out[ox] = 0
                            ox += 1
                        }
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

    /// Folds column gradients of `images` back into `dx`, adding every column entry to the input
    /// element it was copied from. Parallel over (image, channel) planes, which receive disjoint
    /// writes. May overwrite column entries that correspond to padding (scratch).
    private func col2im(
        _ columns: UnsafePointer<Float>, rowStride ld: Int, images: Range<Int>,
        into dx: UnsafeMutablePointer<Float>
    ) {
        let g = geometry
        let cols = SendablePointer(UnsafeMutablePointer(mutating: columns))
        let out = SendablePointer(dx)
        let kh = kernelHeight
        let kw = kernelWidth
        let s = stride
        let pad = padding
        let cin = inputChannels
        let first = images.lowerBound
        let count = images.count
        let sameSize = s == 1 && g.ho == g.h && g.wo == g.w
        let planes = planeStrides(g)
        parallelFor(count * cin, costPerItem: kh * kw * g.p) { range in
            for item in range {
                let local = item / cin
                let c = item % cin
                let plane =
                    out.pointer + ((first + local) * planes.image + c * planes.channel) * g.h * g.w
                plane.update(repeating: 0, count: g.h * g.w)
                for i in 0..<kh {
                    for j in 0..<kw {
                        let k = (c * kh + i) * kw + j
                        let row = cols.pointer + k * ld + local * g.p
                        if sameSize {
                            // One contiguous shifted addition; the entries of columns that fall
                            // outside the image (which would wrap to the neighbouring row) are
                            // zeroed first, so they add nothing.
                            let shift = Shift(i - pad, j - pad, h: g.h, w: g.w)
                            shift.zeroEdgeColumns(row)
                            add(
                                row + shift.copied.lowerBound,
                                to: plane + shift.copied.lowerBound + shift.offset,
                                shift.copied.count)
                            continue
                        }
                        for oy in 0..<g.ho {
                            let y = oy * s - pad + i
                            if y < 0 || y >= g.h { continue }
                            let line = plane + y * g.w
                            let from = row + oy * g.wo
                            if s == 1 {
                                let firstX = max(0, pad - j)
                                let last = min(g.wo, g.w + pad - j)
                                let target = line - pad + j
                                var ox = firstX
                                while ox + 8 <= last {
                                    store8(load8(target + ox) + load8(from + ox), target + ox)
                                    ox += 8
                                }
                                while ox < last {
                                    target[ox] += from[ox]
                                    ox += 1
                                }
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

/// For a stride-1 convolution whose output has the input's size (`2 pad = k - 1`): how the unfolded
/// row of kernel offset `(dy, dx) = (i - pad, j - pad)` maps onto an `h x w` plane. Output position
/// `t = oy w + ox` reads input element `t + offset`, valid when `0 <= oy + dy < h` and
/// `0 <= ox + dx < w`.
private struct Shift {
    let dx: Int, w: Int
    /// `dy w + dx`.
    let offset: Int
    /// The output positions copied in one run: the valid rows, trimmed so that `t + offset` stays
    /// inside the plane (the trimmed ends lie in edge columns).
    let copied: Range<Int>
    /// The rows whose input row is inside the image.
    let rows: Range<Int>

    init(_ dy: Int, _ dx: Int, h: Int, w: Int) {
        self.dx = dx
        self.w = w
        offset = dy * w + dx
        rows = max(0, -dy)..<max(max(0, -dy), min(h, h - dy))
        let lower = max(rows.lowerBound * w, -offset)
        let upper = min(rows.upperBound * w, h * w - offset)
        copied = lower..<max(lower, upper)
    }

    /// Zeroes, in the valid rows of `row`, the columns whose input column is outside the image.
    func zeroEdgeColumns(_ row: UnsafeMutablePointer<Float>) {
        let columns = dx < 0 ? 0..<min(w, -dx) : max(0, w - dx)..<w
        guard !columns.isEmpty else { return }
        for oy in rows {
            for ox in columns { row[oy * w + ox] = 0 }
        }
    }
}

/// `to[0..<count] = from[0..<count]`, eight lanes at a time (runs are a few hundred elements:
/// explicit vector copies, not memcpy calls).
@inline(__always)
private func copy(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, _ count: Int) {
    var t = 0
    while t + 8 <= count {
        store8(load8(from + t), to + t)
        t += 8
    }
    while t < count {
        to[t] = from[t]
        t += 1
    }
}

/// `to[0..<count] = value`, eight lanes at a time.
@inline(__always)
private func fill(_ to: UnsafeMutablePointer<Float>, _ count: Int, with value: Float) {
    let v = Float8(repeating: value)
    var t = 0
    while t + 8 <= count {
        store8(v, to + t)
        t += 8
    }
    while t < count {
        to[t] = value
        t += 1
    }
}

/// The sum of `from[0..<count]` as the bias gradient takes it: eight lanes, then the tail, added
/// in Double.
@inline(__always)
private func planeSum(_ from: UnsafePointer<Float>, _ count: Int) -> Double {
    var v = Float8.zero
    var t = 0
    while t + 8 <= count {
        v += load8(from + t)
        t += 8
    }
    var rest: Float = 0
    while t < count {
        rest += from[t]
        t += 1
    }
    return Double(horizontalSum(v)) + Double(rest)
}

/// `to[0..<count] += from[0..<count]`, eight lanes at a time.
@inline(__always)
private func add(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, _ count: Int) {
    var t = 0
    while t + 8 <= count {
        store8(load8(to + t) + load8(from + t), to + t)
        t += 8
    }
    while t < count {
        to[t] += from[t]
        t += 1
    }
}
