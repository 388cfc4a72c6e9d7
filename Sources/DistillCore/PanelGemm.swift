#if !canImport(Accelerate)
import CBLAS
#endif

/// A matrix product of our own for the small-model shapes where OpenBLAS leaves speed unused: a
/// dense layer's products over many rows with 64 to 256 inputs and outputs (a small
/// transformer's), which OpenBLAS's SkylakeX kernel runs at 90 to 150 GFLOP/s on one core of the
/// benchmark machine and this kernel at 130 to 170 (`DistillBenchmarks gemm`, BENCHMARKS.md).
/// `gemm` sends a call here when `panelGemmTakes` says so.
///
/// `C = op(A) op(B) + beta C`, row-major, `op(A)` `m x k` (k > 0), `op(B)` `k x n`; `A` as stored
/// or transposed, `B` as stored or transposed (not both transposed). The columns of `C` go in
/// panels of 64; for each panel and each run of `panelDepth` steps of `k`, the panel of `op(B)` is
/// copied into a compact `[depth, 64]` buffer (zeros past the last column), and every 6 rows of `C`
/// are one register tile: 6 x 64 sums in 24 sixteen-lane registers, one broadcast of `A` and four
/// loads of the panel per step of `k`, six rows sharing each load. The first run of `k` scales by
/// `beta`, the next ones add. Each element of `C` is summed over `k` in order, in the same way
/// whatever the number of threads. With `threaded`, the rows are split over the workers in runs of
/// whole tiles.
///
/// Written for 512-bit SIMD registers (AVX-512): built for a CPU without them, the tile spills
/// and `panelGemmTakes` is false.
package func panelGemm(
    _ transA: MatrixTranspose, _ transB: MatrixTranspose, m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threaded: Bool = false
) {
    precondition(!(transA == .transpose && transB == .transpose) && k > 0)
    guard m > 0, n > 0 else { return }
    let (a, b, c) = (
        SendablePointer(UnsafeMutablePointer(mutating: a)),
        SendablePointer(UnsafeMutablePointer(mutating: b)), SendablePointer(c)
    )
    let tiles = (m + tileRows - 1) / tileRows
    func run(_ range: Range<Int>) {
        panelGemmRows(
            transA, transB,
            rows: (range.lowerBound * tileRows)..<min(m, range.upperBound * tileRows),
            n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: ldb, beta: beta, c: c.pointer,
            ldc: ldc)
    }
    if threaded {
        parallelFor(tiles, costPerItem: tileRows * n * k / 16) { run($0) }
    } else {
        run(0..<tiles)
    }
}

/// Whether `gemm` sends a call to `panelGemm`: a build for 512-bit SIMD registers (not on Apple
/// platforms, where Accelerate runs every product) and a call `panelGemmFits`.
package func panelGemmTakes(
    _ transA: MatrixTranspose, _ transB: MatrixTranspose, m: Int, n: Int, k: Int, alpha: Float
) -> Bool {
    #if canImport(Accelerate)
    return false
    #else
    return distill_simd_is_512_bits() != 0
        && panelGemmFits(transA, transB, m: m, n: n, k: k, alpha: alpha)
    #endif
}

/// The calls where `panelGemm` measured faster than OpenBLAS on an AVX-512 machine (BENCHMARKS.md),
/// `alpha` 1: `x W^T` and `dout W` with 64 or more rows, 64 to 256 columns and 32 to 256 steps of
/// `k` (the dense layers of a transformer of width 64 to 256, in blocks of rows), and `dout^T x`
/// with 16 to 256 rows, 64 columns and k 1,024 or more (the weight gradients of a width-64 model's
/// layers over a batch of positions; not an attention head's short `A^T dy`, slower here).
package func panelGemmFits(
    _ transA: MatrixTranspose, _ transB: MatrixTranspose, m: Int, n: Int, k: Int, alpha: Float
) -> Bool {
    guard alpha == 1 else { return false }
    switch (transA, transB) {
    case (.none, _): return m >= 64 && (64...256).contains(n) && (32...256).contains(k)
    case (.transpose, .none): return (16...256).contains(m) && n == 64 && k >= 1024
    case (.transpose, .transpose): return false
    }
}

/// The rows of `C` a register tile covers.
private let tileRows = 6
/// The steps of `k` a packed panel of `op(B)` holds (128 x 64 floats, 32 KB: within a core's L1
/// data cache).
private let panelDepth = 128

/// `panelGemm` on the rows `rows` of `C` (a start that is a multiple of `tileRows`).
private func panelGemmRows(
    _ transA: MatrixTranspose, _ transB: MatrixTranspose, rows: Range<Int>, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    // Element (i, p) of op(A) is at a + i * rowStride + p * depthStride.
    let (rowStride, depthStride) = transA == .none ? (lda, 1) : (1, lda)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: panelDepth * 64) { buffer in
        let panel = buffer.baseAddress!
        for j in stride(from: 0, to: n, by: 64) {
            let columns = min(64, n - j)
            for p0 in stride(from: 0, to: k, by: panelDepth) {
                let depth = min(panelDepth, k - p0)
                pack(
                    transB, b, ldb: ldb, steps: p0..<(p0 + depth), columns: j..<(j + columns),
                    into: panel)
                var i = rows.lowerBound
                while i < rows.upperBound {
                    let count = min(tileRows, rows.upperBound - i)
                    registerTile(
                        rows: count, columns: columns, depth: depth,
                        a: a + i * rowStride + p0 * depthStride, rowStride: rowStride,
                        depthStride: depthStride, panel: panel, beta: p0 == 0 ? beta : 1,
                        c: c + i * ldc + j, ldc: ldc)
                    i += count
                }
            }
        }
    }
}

/// Copies `op(B)[steps, columns]` into `panel` as `[steps.count, 64]`, zeros past the columns.
private func pack(
    _ transB: MatrixTranspose, _ b: UnsafePointer<Float>, ldb: Int, steps: Range<Int>,
    columns: Range<Int>, into panel: UnsafeMutablePointer<Float>
) {
    let width = columns.count
    if width < 64 { panel.update(repeating: 0, count: steps.count * 64) }
    if transB == .none {
        for (row, p) in steps.enumerated() {
            (panel + row * 64).update(from: b + p * ldb + columns.lowerBound, count: width)
        }
    } else {
        for (column, j) in columns.enumerated() {
            let source = b + j * ldb
            for (row, p) in steps.enumerated() { panel[row * 64 + column] = source[p] }
        }
    }
}

/// `C[rows, columns] = A[rows, depth] panel[depth, 64] + beta C` for up to 6 rows and 64 columns:
/// the sums stay in registers over the whole depth. Fewer than 6 rows repeat the last row's
/// product, unstored; fewer than 64 columns go through a buffer.
private func registerTile(
    rows: Int, columns: Int, depth: Int, a: UnsafePointer<Float>, rowStride: Int,
    depthStride: Int, panel: UnsafePointer<Float>, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    func row(_ r: Int) -> UnsafePointer<Float> { a + min(r, rows - 1) * rowStride }
    var (a0, a1, a2, a3, a4, a5) = (row(0), row(1), row(2), row(3), row(4), row(5))
    var (c0, c1, c2, c3, c4, c5) = (
        TileRow(), TileRow(), TileRow(), TileRow(), TileRow(), TileRow()
    )
    var p = panel
    for _ in 0..<depth {
        let b = TileRow(loading: p)
        c0.add(a0.pointee, b)
        c1.add(a1.pointee, b)
        c2.add(a2.pointee, b)
        c3.add(a3.pointee, b)
        c4.add(a4.pointee, b)
        c5.add(a5.pointee, b)
        p += 64
        (a0, a1, a2) = (a0 + depthStride, a1 + depthStride, a2 + depthStride)
        (a3, a4, a5) = (a3 + depthStride, a4 + depthStride, a5 + depthStride)
    }
    if rows == tileRows && columns == 64 {
        c0.store(c, beta: beta)
        c1.store(c + ldc, beta: beta)
        c2.store(c + 2 * ldc, beta: beta)
        c3.store(c + 3 * ldc, beta: beta)
        c4.store(c + 4 * ldc, beta: beta)
        c5.store(c + 5 * ldc, beta: beta)
        return
    }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: tileRows * 64) { buffer in
        let tile = buffer.baseAddress!
        c0.store(tile, beta: 0)
        c1.store(tile + 64, beta: 0)
        c2.store(tile + 128, beta: 0)
        c3.store(tile + 192, beta: 0)
        c4.store(tile + 256, beta: 0)
        c5.store(tile + 320, beta: 0)
        for r in 0..<rows {
            let (target, sums) = (c + r * ldc, tile + r * 64)
            for j in 0..<columns { target[j] = beta == 0 ? sums[j] : sums[j] + beta * target[j] }
        }
    }
}

/// One row of a register tile: 64 columns in four sixteen-lane vectors.
private struct TileRow {
    typealias Lanes = SIMD16<Float>
    var v0 = Lanes(), v1 = Lanes(), v2 = Lanes(), v3 = Lanes()

    @inline(__always) init() {}

    @inline(__always) init(loading p: UnsafePointer<Float>) {
        (v0, v1, v2, v3) = (load(p), load(p + 16), load(p + 32), load(p + 48))
    }

    /// `self += x * b`, lane by lane.
    @inline(__always) mutating func add(_ x: Float, _ b: TileRow) {
        let x = Lanes(repeating: x)
        v0 = v0.addingProduct(x, b.v0)
        v1 = v1.addingProduct(x, b.v1)
        v2 = v2.addingProduct(x, b.v2)
        v3 = v3.addingProduct(x, b.v3)
    }

    /// `p[0..<64] = self + beta * p[0..<64]` (`self` alone when beta is 0).
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>, beta: Float) {
        if beta == 0 {
            storeLanes(v0, p)
            storeLanes(v1, p + 16)
            storeLanes(v2, p + 32)
            storeLanes(v3, p + 48)
            return
        }
        storeLanes(v0.addingProduct(beta, load(p)), p)
        storeLanes(v1.addingProduct(beta, load(p + 16)), p + 16)
        storeLanes(v2.addingProduct(beta, load(p + 32)), p + 32)
        storeLanes(v3.addingProduct(beta, load(p + 48)), p + 48)
    }
}

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) private func storeLanes(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
