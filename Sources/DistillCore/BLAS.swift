#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Whether a matrix operand is used as stored or transposed.
package enum MatrixTranspose: Sendable {
    case none
    case transpose

    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// One recorded `gemm` call: its shape, without its data.
package struct GemmCall: Sendable, Equatable {
    package let transA: MatrixTranspose, transB: MatrixTranspose
    package let m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
    package let beta: Float
    /// The product's scale: a replay passes it too, so that `gemm` sends the call where the
    /// recorded one went (`panelGemmTakes` takes alpha 1 only).
    package var alpha: Float = 1
    /// Where the call was made when a `concurrentChunks` worker made it; nil otherwise.
    package var worker: GemmWorker? = nil

    /// The same call on compact operands: each leading dimension is the width the call uses.
    package var compacted: GemmCall {
        GemmCall(
            transA: transA, transB: transB, m: m, n: n, k: k,
            lda: transA == .none ? k : m, ldb: transB == .none ? n : k, ldc: n, beta: beta,
            alpha: alpha, worker: worker)
    }
}

/// The `concurrentChunks` call (its `region`, numbered from 0 in the recording) and the chunk of
/// it that made a recorded `gemm` call, and whether BLAS ran on one thread there
/// (`withSingleThreadedBLAS`): what a replay needs to issue the calls the same way.
package struct GemmWorker: Sendable, Equatable {
    package let region: Int, chunk: Int, chunks: Int
    package let singleThreadedBLAS: Bool
}

/// The calls one chunk of a `concurrentChunks` region makes while recording: each chunk appends
/// to a list of its own, so the workers share nothing.
package final class GemmCallList: @unchecked Sendable {
    let worker: GemmWorker
    fileprivate(set) var calls: [GemmCall] = []
    init(_ worker: GemmWorker) { self.worker = worker }
}

/// Collects the `gemm` calls made inside `recordingGemmCalls` (the benchmark records a training
/// step's calls and replays them on their own buffers to time the step's BLAS floor).
///
/// Calls that `concurrentChunks` workers make inside the scope are recorded too, each chunk's in
/// a list of its own, kept in the order the regions began (`GemmWorker`).
package final class GemmRecorder: @unchecked Sendable {  // written by one thread, inside its scope
    /// The calls and the regions' lists in the order they were made or began.
    private var entries: [Entry] = []
    private var regions = 0
    /// The recorder of the innermost `recordingGemmCalls` on this thread; nil outside one.
    @TaskLocal static var current: GemmRecorder?
    /// The list of the `concurrentChunks` chunk this thread is running while recording.
    @TaskLocal static var chunk: GemmCallList?

    private enum Entry {
        case call(GemmCall)
        case region([GemmCallList])
    }

    fileprivate func append(_ call: GemmCall) { entries.append(.call(call)) }

    /// A list for each of the `chunks` chunks of a `concurrentChunks` region that begins.
    package func beginRegion(chunks: Int) -> [GemmCallList] {
        #if canImport(Accelerate)
        let single = false
        #else
        let single = openblas_get_num_threads() == 1
        #endif
        let lists = (0..<chunks).map {
            GemmCallList(
                GemmWorker(region: regions, chunk: $0, chunks: chunks, singleThreadedBLAS: single))
        }
        regions += 1
        entries.append(.region(lists))
        return lists
    }

    /// Every call, a region's chunk by chunk.
    package var calls: [GemmCall] {
        entries.flatMap { entry -> [GemmCall] in
            switch entry {
            case .call(let call): [call]
            case .region(let lists): lists.flatMap(\.calls)
            }
        }
    }
}

/// Runs `body` and returns what it returns with the `gemm` calls it made, in order. Outside such a
/// scope `gemm` records nothing (one task-local read per call).
package func recordingGemmCalls<R>(_ body: () throws -> R) rethrows -> (
    result: R, calls: [GemmCall]
) {
    let recorder = GemmRecorder()
    let result = try GemmRecorder.$current.withValue(recorder) { try body() }
    return (result, recorder.calls)
}

/// Row-major single-precision matrix product `C = alpha * op(A) * op(B) + beta * C`.
///
/// `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`; `lda`, `ldb`, `ldc` are the row strides
/// of the matrices as stored. Every matrix product on a hot path goes through it: to BLAS
/// (`blasGemm`: OpenBLAS on Linux, Accelerate on Apple platforms), or on an AVX-512 build to our
/// own kernel at the small-model shapes where it is faster (`panelGemm`, `panelGemmTakes`).
@inline(__always)
package func gemm(
    _ transA: MatrixTranspose, _ transB: MatrixTranspose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0, n > 0 else { return }
    if let recorder = GemmRecorder.current {
        let call = GemmCall(
            transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc,
            beta: beta, alpha: alpha)
        if let list = GemmRecorder.chunk {
            var call = call
            call.worker = list.worker
            list.calls.append(call)
        } else {
            recorder.append(call)
        }
    }
    if k == 0 {
        // BLAS leaves C untouched for k = 0 only when beta = 1; make the result well defined.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
        return
    }
    #if !canImport(Accelerate)
    // Our kernel threads where OpenBLAS would: not inside `withSingleThreadedBLAS`, whose callers
    // run their products on our workers already.
    if panelGemmTakes(transA, transB, m: m, n: n, k: k, alpha: alpha) {
        return panelGemm(
            transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
            ldc: ldc, threaded: openblas_get_num_threads() > 1)
    }
    #endif
    blasGemm(
        transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
        beta: beta, c: c, ldc: ldc)
}

/// `gemm`'s product through BLAS itself (`cblas_sgemm`), whatever the shape, unrecorded; `k` > 0.
@inline(__always)
package func blasGemm(
    _ transA: MatrixTranspose, _ transB: MatrixTranspose, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    #if canImport(Accelerate)
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    #else
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
        beta, c, blasint(ldc))
    #endif
}

/// Runs `body` with BLAS on one thread per call, for code that runs many small products on its own
/// workers (one attention head each): BLAS's own threads would then only hand off and wait.
/// OpenBLAS's thread count is restored afterwards; Accelerate needs nothing.
package func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
    #if canImport(Accelerate)
    return try body()
    #else
    let threads = openblas_get_num_threads()
    if threads > 1 { openblas_set_num_threads(1) }
    defer { if threads > 1 { openblas_set_num_threads(threads) } }
    return try body()
    #endif
}

/// `y = alpha * x + y` over `count` contiguous floats (BLAS `saxpy`; one fused multiply-add per
/// element where the CPU has FMA, as PyTorch's vectorised `y.add_(x, alpha=...)`).
///
/// SGD's update `w -= lr * v` goes through it: right after the backward pass's GEMMs it runs on
/// the threads those GEMMs used, and measured faster there than our own kernel on our own threads,
/// in quiet minutes and more so on a busy host (BENCHMARKS.md, "Tried and not kept").
package func axpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>)
{
    guard count > 0 else { return }
    #if canImport(Accelerate)
    cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
    #else
    cblas_saxpy(blasint(count), alpha, x, 1, y, 1)
    #endif
}
