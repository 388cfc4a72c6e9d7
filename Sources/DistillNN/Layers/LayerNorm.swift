import DistillCore

/// Layer normalisation over the last dimension, as PyTorch's `nn.LayerNorm(dimension)`.
///
/// For each row `x` of `dimension` values (any leading shape):
///
///     mean = sum(x) / C,   var = sum((x - mean)^2) / C   (biased, as PyTorch)
///     rstd = 1 / sqrt(var + epsilon),   xhat = (x - mean) * rstd
///     y = weight * xhat + bias
///
/// with `weight` (gamma, ones) and `bias` (beta, zeros) of shape `[dimension]`, `epsilon` 1e-5.
/// Backward, with `g = dy * weight` per row:
///
///     dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
///     dweight += sum over rows of dy * xhat,   dbias += sum over rows of dy
///
/// The forward pass keeps each row's `mean` and `rstd` for the backward pass (as llm.c's
/// `layernorm_forward`). The sums run in Float, eight lanes at a time, the variance over the
/// centred values (two passes, as PyTorch's CPU kernel).
public final class LayerNorm: Layer {
    public let dimension: Int
    public let epsilon: Float
    public let weight: Parameter
    public let bias: Parameter
    public var computesInputGradient = true
    private var input = Tensor(zeros: [0])
    private var output = Tensor(zeros: [0])
    private var inputGradient = Tensor(zeros: [0])
    private var statistics = Tensor(zeros: [0])  // [rows, 2]: each row's mean and rstd

    public init(dimension: Int, epsilon: Float = 1e-5) {
        precondition(dimension >= 1 && epsilon > 0)
        self.dimension = dimension
        self.epsilon = epsilon
        let ones = Tensor(zeros: [dimension])
        ones.fill(1)
        weight = Parameter(name: "weight", value: ones, isWeight: false)
        bias = Parameter(name: "bias", value: Tensor(zeros: [dimension]), isWeight: false)
    }

    public var parameters: [Parameter] { [weight, bias] }
    public var descriptor: String { "layernorm:\(dimension)" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.last == dimension else {
            throw ArchitectureError("\(descriptor) expects [..., \(dimension)], got \(inputShape)")
        }
        return inputShape
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        let c = dimension
        let rows = input.count / c
        output.resize(to: input.shape)
        if mode == .training { self.input = input }
        if statistics.count != 2 * rows { statistics = Tensor(zeros: [rows, 2]) }
        let (x, y) = (SendablePointer(input.pointer), SendablePointer(output.pointer))
        let (w, b) = (SendablePointer(weight.value.pointer), SendablePointer(bias.value.pointer))
        let stats = SendablePointer(statistics.pointer)
        let epsilon = self.epsilon
        let whole = c - c % 8  // columns in full groups of eight; the rest one by one
        parallelFor(rows, costPerItem: 4 * c) { range in
            for r in range {
                let (xr, yr) = (x.pointer + r * c, y.pointer + r * c)
                var sums = Float8()
                for j in stride(from: 0, to: whole, by: 8) { sums += load8(xr + j) }
                var sum = horizontalSum(sums)
                for j in whole..<c { sum += xr[j] }
                let m = sum / Float(c)
                var squares = Float8()
                for j in stride(from: 0, to: whole, by: 8) {
                    let d = load8(xr + j) - m
                    squares = squares.addingProduct(d, d)
                }
                var square = horizontalSum(squares)
                for j in whole..<c { square += (xr[j] - m) * (xr[j] - m) }
                let s = 1 / (square / Float(c) + epsilon).squareRoot()
                for j in stride(from: 0, to: whole, by: 8) {
                    let normalized = (load8(xr + j) - m) * s
                    store8(normalized * load8(w.pointer + j) + load8(b.pointer + j), yr + j)
                }
                for j in whole..<c { yr[j] = (xr[j] - m) * s * w[j] + b[j] }
                (stats[2 * r], stats[2 * r + 1]) = (m, s)
            }
        }
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        backward(outputGradient, adding: nil)
    }

    /// The backward pass plus `residualGradient` (the input's shape), added to the input gradient
    /// as each row of it is written, without a pass of its own: the gradient a residual connection
    /// passes around this layer (a transformer block's). The parameter gradients are the layer's
    /// own.
    public func backward(_ outputGradient: Tensor, adding residualGradient: Tensor?) -> Tensor {
        let c = dimension
        let rows = outputGradient.count / c
        let whole = c - c % 8
        let computesInput = computesInputGradient
        if computesInput { inputGradient.resize(to: outputGradient.shape) }
        let (x, dy, dx, stats, w) = (
            SendablePointer(input.pointer), SendablePointer(outputGradient.pointer),
            SendablePointer(inputGradient.pointer), SendablePointer(statistics.pointer),
            SendablePointer(weight.value.pointer)
        )
        precondition(residualGradient.map { $0.count == outputGradient.count } ?? true)
        let residual = residualGradient.map { SendablePointer($0.pointer) }
        // One pass over the rows, in blocks of `columnSumBlock` on the workers: each row's input
        // gradient, and the block's own partial sums of the parameter gradients, added up in block
        // order at the end (so the result does not depend on the number of cores).
        let blocks = rowBlocks(rows)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * blocks * c) { buffer in
            let partials = SendablePointer(buffer.baseAddress!)
            parallelFor(blocks, costPerItem: 8 * columnSumBlock * c) { range in
                for block in range {
                    let (dwp, dbp) = (
                        partials.pointer + 2 * block * c, partials.pointer + (2 * block + 1) * c
                    )
                    dwp.update(repeating: 0, count: 2 * c)
                    for r in (block * columnSumBlock)..<min(rows, (block + 1) * columnSumBlock) {
                        let (xr, dyr, dxr) = (
                            x.pointer + r * c, dy.pointer + r * c, dx.pointer + r * c
                        )
                        let (m, s) = (stats[2 * r], stats[2 * r + 1])
                        var (gs, gxs) = (Float8(), Float8())
                        for j in stride(from: 0, to: whole, by: 8) {
                            let (d, xhat) = (load8(dyr + j), (load8(xr + j) - m) * s)
                            let g = d * load8(w.pointer + j)
                            gs += g
                            gxs = gxs.addingProduct(g, xhat)
                            store8(load8(dwp + j).addingProduct(d, xhat), dwp + j)
                            store8(load8(dbp + j) + d, dbp + j)
                        }
                        var (meanG, meanGX) = (horizontalSum(gs), horizontalSum(gxs))
                        for j in whole..<c {
                            let (d, xhat) = (dyr[j], (xr[j] - m) * s)
                            meanG += d * w[j]
                            meanGX += d * w[j] * xhat
                            dwp[j] += d * xhat
                            dbp[j] += d
                        }
                        guard computesInput else { continue }
                        let (a, b) = (meanG / Float(c), meanGX / Float(c))
                        // The residual gradient's row, added when there is one.
                        let rr = residual.map { $0.pointer + r * c }
                        for j in stride(from: 0, to: whole, by: 8) {
                            let g = load8(dyr + j) * load8(w.pointer + j)
                            let d = s * (g - a - (load8(xr + j) - m) * s * b)
                            store8(rr.map { load8($0 + j) + d } ?? d, dxr + j)
                        }
                        for j in whole..<c {
                            let d = s * (dyr[j] * w[j] - a - (xr[j] - m) * s * b)
                            dxr[j] = rr.map { $0[j] + d } ?? d
                        }
                    }
                }
            }
            let (dw, betaW) = weight.accumulationTarget()
            addBlockSums(
                partials.pointer, blocks: blocks, stride: 2 * c, columns: c, to: dw.pointer,
                beta: betaW)
            let (db, betaB) = bias.accumulationTarget()
            addBlockSums(
                partials.pointer + c, blocks: blocks, stride: 2 * c, columns: c, to: db.pointer,
                beta: betaB)
        }
        return inputGradient
    }
}
