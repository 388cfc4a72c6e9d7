import DistillCore

/// A fully connected layer, `y = x W^T + b`, with `W` stored `[out, in]` as in PyTorch.
///
/// Shapes: input `[N, in]`, output `[N, out]`; any leading shape (`[B, T, in]` for a sequence)
/// is taken as `N` rows. Forward lays `b` down in every row of `y` and lets the GEMM add
/// `x W^T` to it (beta 1: BLAS would otherwise clear `y` first, a pass of its own).
/// Backward: `dW += dy^T x` (`[out, in]`), `db += sum_n dy` (`[out]`), `dx = dy W` (`[N, in]`).
/// All three products are BLAS GEMMs.
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
        let n = input.count / inputSize
        output.resize(to: input.shape.dropLast() + [outputSize])
        fillRows(output.pointer, rows: n, columns: outputSize, with: bias.value.pointer)
        gemm(
            .none, .transpose, m: n, n: outputSize, k: inputSize,
            a: input.pointer, lda: inputSize, b: weight.value.pointer, ldb: inputSize,
            beta: 1, c: output.pointer, ldc: outputSize)
        if mode == .training { self.input = input }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let n = input.count / inputSize
        let (dW, betaW) = weight.accumulationTarget()
        gemm(
            .transpose, .none, m: outputSize, n: inputSize, k: n,
            a: outputGradient.pointer, lda: outputSize, b: input.pointer, ldb: inputSize,
            beta: betaW, c: dW.pointer, ldc: inputSize)
        let (db, betaB) = bias.accumulationTarget()
        addColumnSums(
            of: outputGradient.pointer, rows: n, columns: outputSize, to: db.pointer, beta: betaB)
        guard computesInputGradient else { return inputGradient }
        inputGradient.resize(to: input.shape)
        gemm(
            .none, .none, m: n, n: inputSize, k: outputSize,
            a: outputGradient.pointer, lda: outputSize, b: weight.value.pointer, ldb: inputSize,
            beta: 0, c: inputGradient.pointer, ldc: inputSize)
        return inputGradient
    }
}

/// `matrix[r, :] = vector` for each of `rows` rows: a bias laid down for a GEMM to add to (beta 1).
func fillRows(
    _ matrix: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
    with vector: UnsafePointer<Float>
) {
    let m = SendablePointer(matrix)
    parallelFor(rows, costPerItem: columns) { range in
        for r in range { (m.pointer + r * columns).update(from: vector, count: columns) }
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
    let blocks = max(1, (rows + columnSumBlock - 1) / columnSumBlock)
    let whole = columns - columns % 8
    withUnsafeTemporaryAllocation(of: Float.self, capacity: blocks * columns) { buffer in
        let partials = SendablePointer(buffer.baseAddress!)
        parallelFor(blocks, costPerItem: columnSumBlock * columns) { range in
            for block in range {
                let sums = partials.pointer + block * columns
                sums.update(repeating: 0, count: columns)
                for r in (block * columnSumBlock)..<min(rows, (block + 1) * columnSumBlock) {
                    let row = matrix + r * columns
                    for j in stride(from: 0, to: whole, by: 8) {
                        store8(load8(sums + j) + load8(row + j), sums + j)
                    }
                    for j in whole..<columns { sums[j] += row[j] }
                }
            }
        }
        for j in 0..<columns {
            var total = partials[j]
            for block in 1..<blocks { total += partials[block * columns + j] }
            target[j] = beta == 0 ? total : beta * target[j] + total
        }
    }
}

/// The rows of one partial sum in `addColumnSums`.
let columnSumBlock = 256
