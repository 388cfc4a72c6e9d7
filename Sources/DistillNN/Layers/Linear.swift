import DistillCore

/// A fully connected layer, `y = x W^T + b`, with `W` stored `[out, in]` as in PyTorch.
///
/// Shapes: input `[N, in]`, output `[N, out]`; any leading shape (`[B, T, in]` for a sequence)
/// is taken as `N` rows. Forward lays `b` down in every row of `y` and lets the GEMM add
/// `x W^T` to it (beta 1: BLAS would otherwise clear `y` first, a pass of its own).
/// Backward: `dW += dy^T x` (`[out, in]`), `db += sum_n dy` (`[out]`), `dx = dy W` (`[N, in]`).
/// All three products go through `gemm`; over many rows (a transformer's batch of positions) the
/// forward pass and `dx` run in blocks of rows on the workers (`splitsIntoRowBlocks`).
public final class Linear: Layer {
    public let inputSize: Int
    public let outputSize: Int
    public let weight: Parameter
    public let bias: Parameter
    public var computesInputGradient = true

    private var input = Tensor(zeros: [0])
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])

    /// A layer with weights drawn by `initialization` from `generator` and zero biases.
    public init(
        inputSize: Int, outputSize: Int, initialization: Initialization = .he,
        generator: inout SeededGenerator
    ) {
        self.inputSize = inputSize
        self.outputSize = outputSize
        weight = Parameter(
            name: "weight",
            value: initialization.tensor(
                shape: [outputSize, inputSize], fanIn: inputSize, fanOut: outputSize,
                generator: &generator),
            isWeight: true)
        bias = Parameter(name: "bias", value: Tensor(zeros: [outputSize]), isWeight: false)
    }

    /// A layer whose weight is `weight` itself (`[out, in]`), shared with another layer: a
    /// language model's output head tied to its token embedding (`[vocabulary, dimension]`).
    /// Both layers add their gradients to it; the bias is its own, zero.
    public init(tiedTo weight: Parameter) {
        precondition(weight.value.shape.count == 2)
        (outputSize, inputSize) = (weight.value.shape[0], weight.value.shape[1])
        self.weight = weight
        bias = Parameter(name: "bias", value: Tensor(zeros: [outputSize]), isWeight: false)
        isTied = true
    }

    /// Whether the weight is shared with another layer (`init(tiedTo:)`).
    public private(set) var isTied = false

    public var parameters: [Parameter] { [weight, bias] }
    public var descriptor: String { "linear:\(inputSize):\(outputSize)\(isTied ? ":tied" : "")" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count >= 2, inputShape.last == inputSize else {
            throw ArchitectureError(
                "\(descriptor) expects input [N, \(inputSize)], got \(inputShape)")
        }
        return inputShape.dropLast() + [outputSize]
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        forward(input, mode: mode, adding: nil)
    }

    /// The forward pass plus `residual` (the output's shape): `residual + x W^T + b`, the residual
    /// added as the bias is laid down, without a pass of its own (a transformer block's residual
    /// sum). The backward pass is the layer's own: the residual's gradient is the caller's.
    public func forward(_ input: Tensor, mode: Mode, adding residual: Tensor?) -> Tensor {
        let n = input.count / inputSize
        output.resize(to: input.shape.dropLast() + [outputSize])
        precondition(residual.map { $0.count == output.count } ?? true, "\(descriptor): residual")
        denseForward(
            input.pointer, rows: n, weight: weight, bias: bias, inputs: inputSize,
            outputs: outputSize, adding: residual?.pointer, into: output.pointer)
        if mode == .training { self.input = input }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let n = input.count / inputSize
        if computesInputGradient { inputGradient.resize(to: input.shape) }
        denseBackward(
            outputGradient.pointer, input: input.pointer, rows: n, weight: weight, bias: bias,
            inputs: inputSize, outputs: outputSize,
            inputGradient: computesInputGradient ? inputGradient.pointer : nil)
        return inputGradient
    }
}

/// A dense layer's forward pass, `out [rows, outputs] = x W^T + b` for `W [outputs, inputs]`,
/// plus `residual [rows, outputs]` when given: `b` (and the residual) laid down in every row, then
/// a GEMM adding `x W^T` to it (`Linear`, and the attention's projections). In blocks of
/// `denseRowBlock` rows on the workers when `splitsIntoRowBlocks`.
func denseForward(
    _ x: UnsafePointer<Float>, rows: Int, weight: Parameter, bias: Parameter, inputs: Int,
    outputs: Int, adding residual: UnsafePointer<Float>? = nil,
    into out: UnsafeMutablePointer<Float>
) {
    let (b, w) = (bias.value.pointer, weight.value.pointer)
    /// Rows `first..<first + count` of `out` (laid down) plus those of `x W^T`.
    func addProduct(_ first: Int, _ count: Int) {
        gemm(
            .none, .transpose, m: count, n: outputs, k: inputs, a: x + first * inputs,
            lda: inputs, b: w, ldb: inputs, beta: 1, c: out + first * outputs, ldc: outputs)
    }
    if splitsIntoRowBlocks(rows) {
        forEachRowBlock(rows) { first, count in
            layDown(b, adding: residual, rows: first..<(first + count), columns: outputs, in: out)
            addProduct(first, count)
        }
    } else {
        parallelFor(rows, costPerItem: outputs) { range in
            layDown(b, adding: residual, rows: range, columns: outputs, in: out)
        }
        addProduct(0, rows)
    }
}

/// A dense layer's backward pass: `dW += dout^T x`, `db += column sums of dout` (both through the
/// parameters' accumulation targets), and `dx = dout W` when `dx` is given.
///
/// `dW` is one `gemm` call over all the rows (its sum runs over them), threaded by BLAS or by
/// `panelGemm`. When `splitsIntoRowBlocks`,
/// `dx` goes in blocks of `denseRowBlock` rows on the workers, each block's bias partial sums
/// taken right after its GEMM has read its rows of `dout`; the sums are `addColumnSums`'s, in the
/// same blocks and order.
func denseBackward(
    _ dout: UnsafePointer<Float>, input x: UnsafePointer<Float>, rows: Int, weight: Parameter,
    bias: Parameter, inputs: Int, outputs: Int, inputGradient dx: UnsafeMutablePointer<Float>?
) {
    let (dW, betaW) = weight.accumulationTarget()
    gemm(
        .transpose, .none, m: outputs, n: inputs, k: rows, a: dout, lda: outputs, b: x,
        ldb: inputs, beta: betaW, c: dW.pointer, ldc: inputs)
    let (db, betaB) = bias.accumulationTarget()
    let w = weight.value.pointer
    /// Rows `first..<first + count` of `dx = dout W`.
    func inputGradient(_ dx: UnsafeMutablePointer<Float>, _ first: Int, _ count: Int) {
        gemm(
            .none, .none, m: count, n: inputs, k: outputs, a: dout + first * outputs,
            lda: outputs, b: w, ldb: inputs, c: dx + first * inputs, ldc: inputs)
    }
    guard let dx, splitsIntoRowBlocks(rows) else {
        addColumnSums(of: dout, rows: rows, columns: outputs, to: db.pointer, beta: betaB)
        if let dx { inputGradient(dx, 0, rows) }
        return
    }
    let blocks = rowBlocks(rows)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: blocks * outputs) { buffer in
        let partials = buffer.baseAddress!
        forEachRowBlock(rows) { first, count in
            inputGradient(dx, first, count)
            let last = first + count - 1
            for block in (first / columnSumBlock)...(last / columnSumBlock) {
                sumColumns(
                    of: dout, rows: rows, columns: outputs, block: block,
                    into: partials + block * outputs)
            }
        }
        addBlockSums(
            partials, blocks: blocks, stride: outputs, columns: outputs, to: db.pointer,
            beta: betaB)
    }
}

/// The rows a worker takes at a time when a dense layer's products are split over the workers
/// (`splitsIntoRowBlocks`): a block's outputs with their bias (512 x 256 floats, 512 KB) stay in
/// the core's L2 cache for the GEMM that adds to them. A multiple of `columnSumBlock`.
let denseRowBlock = 512

/// Whether a dense layer's products over `rows` rows run in blocks of `denseRowBlock` rows, each
/// block's GEMM on one BLAS thread of a worker of ours (`forEachRowBlock`), rather than as one
/// GEMM on BLAS's threads: with OpenBLAS, more than one worker, and two blocks or more. The
/// passes around a GEMM then touch its block's rows in the same core's cache, and the workers
/// need no hand-off with BLAS's threads. Accelerate runs each GEMM whole, as it threads its own.
func splitsIntoRowBlocks(_ rows: Int) -> Bool {
    #if canImport(Accelerate)
    return false
    #else
    return processorCount > 1 && rows >= 2 * denseRowBlock
    #endif
}

/// `body(first, count)` for each block of `denseRowBlock` rows of `rows` (the last may be short),
/// the blocks split over the workers in contiguous runs, with BLAS on one thread in each.
func forEachRowBlock(_ rows: Int, _ body: (_ first: Int, _ count: Int) -> Void) {
    let blocks = (rows + denseRowBlock - 1) / denseRowBlock
    withSingleThreadedBLAS {
        parallelFor(blocks, minimumWork: 0) { range in
            for block in range {
                let first = block * denseRowBlock
                body(first, min(denseRowBlock, rows - first))
            }
        }
    }
}

/// `matrix[r, :] = bias` (`+ residual[r, :]` when given) for each row `r` of `rows`: what a GEMM
/// with beta 1 adds a dense layer's products to.
func layDown(
    _ bias: UnsafePointer<Float>, adding residual: UnsafePointer<Float>?, rows: Range<Int>,
    columns: Int, in matrix: UnsafeMutablePointer<Float>
) {
    let whole = columns - columns % 8
    for r in rows {
        let row = matrix + r * columns
        guard let residual else {
            row.update(from: bias, count: columns)
            continue
        }
        let x = residual + r * columns
        for j in stride(from: 0, to: whole, by: 8) {
            store8(load8(x + j) + load8(bias + j), row + j)
        }
        for j in whole..<columns { row[j] = x[j] + bias[j] }
    }
}

/// `target[j] = beta * target[j] + sum_r matrix[r, j]`, the sum taken on its own first (so that
/// a momentum buffer accumulating it rounds as `momentum * v + gradient` does).
///
/// The rows are summed in blocks of `columnSumBlock`, each block row by row into a partial sum of
/// its own (consecutive memory; the blocks run on the workers), then the partial sums in block
/// order: the result does not depend on the number of cores.
func addColumnSums(
    of matrix: UnsafePointer<Float>, rows: Int, columns: Int,
    to target: UnsafeMutablePointer<Float>, beta: Float
) {
    let blocks = rowBlocks(rows)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: blocks * columns) { buffer in
        let partials = SendablePointer(buffer.baseAddress!)
        parallelFor(blocks, costPerItem: columnSumBlock * columns) { range in
            for block in range {
                sumColumns(
                    of: matrix, rows: rows, columns: columns, block: block,
                    into: partials.pointer + block * columns)
            }
        }
        addBlockSums(
            partials.pointer, blocks: blocks, stride: columns, columns: columns, to: target,
            beta: beta)
    }
}

/// `sums[j] = sum_r matrix[r, j]` over the rows of block `block` (`columnSumBlock` rows, the last
/// block fewer), row by row.
func sumColumns(
    of matrix: UnsafePointer<Float>, rows: Int, columns: Int, block: Int,
    into sums: UnsafeMutablePointer<Float>
) {
    let whole = columns - columns % 8
    sums.update(repeating: 0, count: columns)
    for r in (block * columnSumBlock)..<min(rows, (block + 1) * columnSumBlock) {
        let row = matrix + r * columns
        for j in stride(from: 0, to: whole, by: 8) {
            store8(load8(sums + j) + load8(row + j), sums + j)
        }
        for j in whole..<columns { sums[j] += row[j] }
    }
}

/// The rows of one partial sum in `addColumnSums` and `LayerNorm`'s backward pass.
let columnSumBlock = 256

/// The blocks of `columnSumBlock` rows that `rows` rows make (at least one).
func rowBlocks(_ rows: Int) -> Int { max(1, (rows + columnSumBlock - 1) / columnSumBlock) }

/// `target[j] = beta * target[j] + sum_b partials[b * stride + j]`, the blocks' partial sums
/// added in block order first (so the result does not depend on which worker summed which block).
func addBlockSums(
    _ partials: UnsafePointer<Float>, blocks: Int, stride: Int, columns: Int,
    to target: UnsafeMutablePointer<Float>, beta: Float
) {
    for j in 0..<columns {
        var total = partials[j]
        for block in 1..<blocks { total += partials[block * stride + j] }
        target[j] = beta == 0 ? total : beta * target[j] + total
    }
}
