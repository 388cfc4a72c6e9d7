import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Multi-head self-attention, as PyTorch's `nn.MultiheadAttention(dim, heads)` applied to one
/// sequence as query, key and value, with a causal mask and a key-padding mask.
///
/// Shapes: B (batch), T (positions), C (`dimension`), NH (`heads`), HS = C / NH (head size).
/// Parameters in PyTorch's names and layouts: `in_proj_weight [3C, C]`, `in_proj_bias [3C]`,
/// `out_proj.weight [C, C]`, `out_proj.bias [C]`. Forward:
///
///     qkv = x Win^T + bin                          [B T, 3C]: q, k, v side by side
///     S = q_h k_h^T / sqrt(HS)                     [T, T] per sequence and head
///     A = softmax(S) over the keys a query may see  masked entries exactly 0
///     y_h = A v_h                                  [T, HS], heads side by side in y [B T, C]
///     out = y Wout^T + bout                        [B T, C]
///
/// A query sees key `j` unless `j > i` (with `causal`) or key `j` is padding (`keyPadding`, set
/// before the forward pass: one flag per position of the batch, `[B T]`, true for padding). Masks
/// are data: the softmax runs over the keys left, subtracting their maximum, and a masked key gets
/// probability 0 and gradient 0. A query that sees no key at all (a sequence of padding only)
/// attends to nothing: its `y` is 0. Backward, per sequence and head, with `dA = dy_h v_h^T`:
///
///     dS = A * (dA - rowsum(A * dA)),   dq_h = dS k_h / sqrt(HS),   dk_h = dS^T q_h / sqrt(HS),
///     dv_h = A^T dy_h
///
/// then the two projections as dense layers. Every product goes through BLAS, one call per
/// sequence, head and tile of queries on strided views of `qkv` (no copies); the sequences and
/// heads run on the workers in parallel, each product on one BLAS thread. With a causal mask the
/// queries go in tiles of `queryTile`, each against the keys up to its last query only (`tiles`);
/// the masked scores beyond a tile's keys are never computed. A tile's `dS` lives in a scratch
/// buffer of the worker's, used by the tile's products and then overwritten by the next tile's:
/// only `A` is kept from the forward pass. No dropout on the attention weights.
public final class SelfAttention: Layer {
    public let dimension: Int
    public let heads: Int
    public let causal: Bool
    public let inWeight: Parameter  // [3C, C]
    public let inBias: Parameter  // [3C]
    public let outWeight: Parameter  // [C, C]
    public let outBias: Parameter  // [C]
    public var computesInputGradient = true
    /// Which positions of the next forward pass's batch are padding, `[B T]`; nil for none.
    public var keyPadding: [Bool]?

    private var input = Tensor(zeros: [0])  // [B, T, C], the last training forward pass's
    private var qkv = Tensor(zeros: [0])  // [B T, 3C]
    private var attention = Tensor(zeros: [0])  // [B, NH, T, T]
    private var headOutputs = Tensor(zeros: [0])  // [B T, C]: y, the heads side by side
    private var output = Tensor(zeros: [0])  // [B T, C]
    private var qkvGradient = Tensor(zeros: [0])  // [B T, 3C]
    private var headsGradient = Tensor(zeros: [0])  // [B T, C]
    private var inputGradient = Tensor(zeros: [0])  // [B, T, C]

    /// Projections drawn as PyTorch's `nn.MultiheadAttention` does (Xavier uniform), biases zero.
    public init(dimension: Int, heads: Int, causal: Bool, generator: inout SeededGenerator) {
        precondition(
            dimension >= 1 && heads >= 1 && dimension % heads == 0,
            "heads must divide the dimension")
        self.dimension = dimension
        self.heads = heads
        self.causal = causal
        let c = dimension
        inWeight = Parameter(
            name: "in_proj_weight",
            value: Initialization.glorot.tensor(
                shape: [3 * c, c], fanIn: c, fanOut: 3 * c, generator: &generator),
            isWeight: true)
        inBias = Parameter(name: "in_proj_bias", value: Tensor(zeros: [3 * c]), isWeight: false)
        outWeight = Parameter(
            name: "out_proj.weight",
            value: Initialization.glorot.tensor(
                shape: [c, c], fanIn: c, fanOut: c, generator: &generator),
            isWeight: true)
        outBias = Parameter(name: "out_proj.bias", value: Tensor(zeros: [c]), isWeight: false)
    }

    public var parameters: [Parameter] { [inWeight, inBias, outWeight, outBias] }
    public var descriptor: String { "attention:\(dimension):\(heads)\(causal ? ":causal" : "")" }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, inputShape[2] == dimension else {
            throw ArchitectureError("\(descriptor) expects [B, T, \(dimension)], got \(inputShape)")
        }
        return inputShape
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        forward(input, mode: mode, adding: nil)
    }

    /// The forward pass plus `residual` (`[B, T, C]`), added as the output projection's bias is
    /// laid down (a transformer block's residual sum, without a pass of its own).
    public func forward(_ input: Tensor, mode: Mode, adding residual: Tensor?) -> Tensor {
        let (b, t, c) = (input.shape[0], input.shape[1], dimension)
        let hs = c / heads
        let rows = b * t
        precondition(
            input.shape.count == 3 && input.shape[2] == c, "\(descriptor): input \(input.shape)")
        let keys = keyPadding ?? []
        precondition(
            keys.isEmpty || keys.count == rows,
            "\(descriptor): \(keys.count) padding flags for \(rows) positions")
        // The sequences with padding take the masked softmax; the others the plain one.
        let padded = (0..<b).map { n in
            !keys.isEmpty && keys[(n * t)..<((n + 1) * t)].contains(true)
        }
        if mode == .training { self.input = input }
        qkv.resize(to: [rows, 3 * c])
        attention.resize(to: [b, heads, t, t])
        headOutputs.resize(to: [rows, c])
        output.resize(to: [b, t, c])
        denseForward(
            input.pointer, rows: rows, weight: inWeight, bias: inBias, inputs: c, outputs: 3 * c,
            into: qkv.pointer)
        // Each sequence and head on a worker of its own: scores, softmax, weighted values.
        let scale = 1 / Float(hs).squareRoot()
        let (qkvP, attentionP, yP) = (
            SendablePointer(qkv.pointer), SendablePointer(attention.pointer),
            SendablePointer(headOutputs.pointer)
        )
        let (causal, heads) = (self.causal, self.heads)
        let tiles = SelfAttention.tiles(t: t, causal: causal)
        withSingleThreadedBLAS {
            parallelFor(b * heads, costPerItem: 4 * t * t, minimumWork: 0) { range in
                for item in range {
                    let (n, h) = (item / heads, item % heads)
                    let q = qkvP.pointer + n * t * 3 * c + h * hs
                    let a = attentionP.pointer + item * t * t
                    let y = yP.pointer + n * t * c + h * hs
                    // A tile of queries scores only the keys its last query sees.
                    for (first, rowCount, keyCount) in tiles {
                        let tile = a + first * t
                        gemm(
                            .none, .transpose, m: rowCount, n: keyCount, k: hs, alpha: scale,
                            a: q + first * 3 * c, lda: 3 * c, b: q + c, ldb: 3 * c, c: tile,
                            ldc: t)
                        for i in first..<(first + rowCount) {
                            if padded[n] {
                                SelfAttention.softmax(
                                    a + i * t, t: keyCount, query: i, causal: causal,
                                    keyPadding: keys, offset: n * t)
                            } else {
                                SelfAttention.softmax(
                                    a + i * t, t: keyCount, keys: causal ? i + 1 : t)
                            }
                        }
                        gemm(
                            .none, .none, m: rowCount, n: hs, k: keyCount, a: tile, lda: t,
                            b: q + 2 * c, ldb: 3 * c, c: y + first * c, ldc: c)
                    }
                }
            }
        }
        precondition(residual.map { $0.count == rows * c } ?? true, "\(descriptor): residual")
        denseForward(
            headOutputs.pointer, rows: rows, weight: outWeight, bias: outBias, inputs: c,
            outputs: c, adding: residual?.pointer, into: output.pointer)
        return output
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let (b, t, c) = (input.shape[0], input.shape[1], dimension)
        let hs = c / heads
        let rows = b * t
        let scale = 1 / Float(hs).squareRoot()
        headsGradient.resize(to: [rows, c])
        qkvGradient.resize(to: [rows, 3 * c])
        denseBackward(
            outputGradient.pointer, input: headOutputs.pointer, rows: rows, weight: outWeight,
            bias: outBias, inputs: c, outputs: c, inputGradient: headsGradient.pointer)
        // Per sequence and head, on a worker of its own, tile by tile: dA = dy v^T into the
        // worker's scratch, then dS = A * (dA - rowsum(A * dA)) in place, then dv, dq and dk.
        let (qkvP, attentionP, dyP, dqkvP) = (
            SendablePointer(qkv.pointer), SendablePointer(attention.pointer),
            SendablePointer(headsGradient.pointer), SendablePointer(qkvGradient.pointer)
        )
        let (causal, heads) = (self.causal, self.heads)
        let tiles = SelfAttention.tiles(t: t, causal: causal)
        let tileRows = tiles.map(\.count).max() ?? 0
        withSingleThreadedBLAS {
            parallelFor(b * heads, costPerItem: 8 * t * t, minimumWork: 0) { range in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: tileRows * t) { scratch in
                    let dsTile = scratch.baseAddress!  // [tile rows, T]
                    for item in range {
                        let (n, h) = (item / heads, item % heads)
                        let q = qkvP.pointer + n * t * 3 * c + h * hs
                        let dq = dqkvP.pointer + n * t * 3 * c + h * hs
                        let a = attentionP.pointer + item * t * t
                        let dy = dyP.pointer + n * t * c + h * hs
                        // The forward pass's tiles, the last first: it covers every key, so its
                        // dK and dV set their rows and the earlier tiles' add to them.
                        for (index, (first, rowCount, keyCount)) in tiles.reversed().enumerated() {
                            let aTile = a + first * t
                            let accumulate: Float = index == 0 ? 0 : 1
                            gemm(
                                .none, .transpose, m: rowCount, n: keyCount, k: hs,
                                a: dy + first * c, lda: c, b: q + 2 * c, ldb: 3 * c, c: dsTile,
                                ldc: t)
                            // A query's row of A is 0 past the keys it sees (up to the
                            // tile's keys), and so is its dS: whole rows, eight lanes at a time.
                            for i in first..<(first + rowCount) {
                                SelfAttention.softmaxBackward(
                                    a + i * t, dsTile + (i - first) * t, count: keyCount)
                            }
                            gemm(
                                .transpose, .none, m: keyCount, n: hs, k: rowCount,
                                a: aTile, lda: t, b: dy + first * c, ldb: c, beta: accumulate,
                                c: dq + 2 * c, ldc: 3 * c)
                            gemm(
                                .none, .none, m: rowCount, n: hs, k: keyCount, alpha: scale,
                                a: dsTile, lda: t, b: q + c, ldb: 3 * c, c: dq + first * 3 * c,
                                ldc: 3 * c)
                            gemm(
                                .transpose, .none, m: keyCount, n: hs, k: rowCount, alpha: scale,
                                a: dsTile, lda: t, b: q + first * 3 * c, ldb: 3 * c,
                                beta: accumulate, c: dq + c, ldc: 3 * c)
                        }
                    }
                }
            }
        }
        inputGradient.resize(to: input.shape)
        denseBackward(
            qkvGradient.pointer, input: input.pointer, rows: rows, weight: inWeight, bias: inBias,
            inputs: c, outputs: 3 * c,
            inputGradient: computesInputGradient ? inputGradient.pointer : nil)
        return inputGradient
    }

    /// The rows of queries scored together with a causal mask.
    static let queryTile = 32

    /// The tiles of queries of a sequence of `t` positions: each tile's first query, its number
    /// of queries, and the keys they are scored against, `0..<keys`. Causal: tiles of
    /// `queryTile` queries, each against the keys up to its last query (the keys past it are
    /// masked for the whole tile), which skips nearly half the products; otherwise one tile of
    /// all queries against all keys.
    static func tiles(t: Int, causal: Bool) -> [(first: Int, count: Int, keys: Int)] {
        guard causal else { return [(0, t, t)] }
        return stride(from: 0, to: t, by: queryTile).map { first in
            let count = min(queryTile, t - first)
            return (first, count, first + count)
        }
    }

    /// Softmax of the first `t` scores of `row` (the keys its tile was scored against) over its
    /// first `keys` entries (at least one), in place, eight lanes at a time; entries `keys..<t` get
    /// exactly 0 (a query with no padding among its keys).
    private static func softmax(_ row: UnsafeMutablePointer<Float>, t: Int, keys: Int) {
        // The group of eight holding the last key is read whole (as far as the row goes), its
        // lanes past `keys` as -inf: exp gives them 0, stored with the group.
        let last = (keys - 1) / 8 * 8
        let lastCount = min(8, t - last)
        let pastKeys = lanes(atOrPast: keys - last)
        let lastLanes =
            (lastCount == 8
            ? load8(row + last) : loadPartial(row + last, lastCount, pad: -.infinity))
            .replacing(with: -.infinity, where: pastKeys)
        var maxima = lastLanes
        var j = 0
        while j < last {
            let lanes = load8(row + j)
            maxima.replace(with: lanes, where: lanes .> maxima)
            j += 8
        }
        let maximum = Float8(repeating: horizontalMax(maxima))
        var sums = Float8()
        j = 0
        while j < last {
            let e = fastExp(load8(row + j) - maximum)
            sums += e
            store8(e, row + j)
            j += 8
        }
        let lastExp = zeroing(fastExp(lastLanes - maximum), where: pastKeys)
        sums += lastExp
        let inverse = 1 / horizontalSum(sums)
        j = 0
        while j < last {
            store8(load8(row + j) * inverse, row + j)
            j += 8
        }
        if lastCount == 8 {
            store8(lastExp * inverse, row + last)
        } else {
            storePartial(lastExp * inverse, row + last, lastCount)
        }
        j = last + 8
        while j + 8 <= t {
            store8(Float8(), row + j)
            j += 8
        }
        if j < t { (row + j).update(repeating: 0, count: t - j) }
    }

    /// `dS = A * (dA - rowsum(A * dA))` over the first `count` entries of one row, in place in `d`
    /// (`a` is the row of A).
    private static func softmaxBackward(
        _ a: UnsafeMutablePointer<Float>, _ d: UnsafeMutablePointer<Float>, count: Int
    ) {
        var dot = Float8()
        var j = 0
        while j + 8 <= count {
            dot = dot.addingProduct(load8(a + j), load8(d + j))
            j += 8
        }
        var total = horizontalSum(dot)
        for k in j..<count { total += a[k] * d[k] }
        j = 0
        while j + 8 <= count {
            store8(load8(a + j) * (load8(d + j) - total), d + j)
            j += 8
        }
        for k in j..<count { d[k] = a[k] * (d[k] - total) }
    }

    /// Softmax of the first `t` scores of `row` (the keys its tile was scored against) for query
    /// `i` over the keys it may see, in place; the others of the `t` get exactly 0 (a row with
    /// none is all 0). `offset` is the sequence's first position in `keyPadding`.
    private static func softmax(
        _ row: UnsafeMutablePointer<Float>, t: Int, query i: Int, causal: Bool, keyPadding: [Bool],
        offset: Int
    ) {
        let last = causal ? i : t - 1
        var maximum = -Float.infinity
        for j in 0...last where !keyPadding[offset + j] { maximum = max(maximum, row[j]) }
        guard maximum > -Float.infinity else {
            row.update(repeating: 0, count: t)
            return
        }
        var sum: Float = 0
        for j in 0..<t {
            if j <= last && !keyPadding[offset + j] {
                row[j] = expf(row[j] - maximum)
                sum += row[j]
            } else {
                row[j] = 0
            }
        }
        let inverse = 1 / sum
        for j in 0...last { row[j] *= inverse }
    }
}
