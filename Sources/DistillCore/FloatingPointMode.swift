import Dispatch

#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Subnormal floats (magnitudes below `Float.leastNormalMagnitude`, about 1.2e-38) and the
/// threads that compute with them.
///
/// x86 processors take a slow microcoded path for every operation that reads or produces a
/// subnormal: up to a hundred times the cost of an ordinary one. Training produces them where
/// values decay without being refreshed, as SGD's momentum of a weight whose gradient stays
/// near zero does (0.9^k). Flushing them to zero costs nothing and changes only values below
/// 1.2e-38, which become 0 (TensorFlow does the same on its CPU threads; PyTorch offers it as
/// `torch.set_flush_denormal(True)`).
///
/// The mode is per thread. `flushSubnormalsToZero()` sets it on the calling thread and restarts
/// OpenBLAS's worker threads from there so they inherit it; `concurrentChunks` hands the caller's
/// mode to Distill's own workers.
public enum FloatingPointMode {
    /// The calling thread's floating-point control word (MXCSR on x86-64, FPCR on AArch64; 0
    /// where Distill does not read it).
    public static var current: UInt64 {
        #if canImport(Accelerate)
        0
        #else
        distill_fp_control()
        #endif
    }

    /// Whether the calling thread flushes subnormal results to zero and reads subnormal inputs
    /// as zero.
    public static var flushesSubnormals: Bool {
        #if canImport(Accelerate)
        false
        #else
        let bits = distill_fp_flush_bits()
        return bits != 0 && current & bits == bits
        #endif
    }

    /// Has the calling thread use `control` (a value of `current`).
    @inline(__always) public static func adopt(_ control: UInt64) {
        #if !canImport(Accelerate)
        if distill_fp_control() != control { distill_set_fp_control(control) }
        #endif
    }

    /// Flushes subnormals to zero on the calling thread and on OpenBLAS's worker threads (or
    /// stops flushing them, with `false`). Call it before any other thread computes: `distill`
    /// calls it first thing. A no-op on Apple platforms (Accelerate's threads are its own).
    public static func flushSubnormalsToZero(_ flush: Bool = true) {
        #if !canImport(Accelerate)
        let bits = distill_fp_flush_bits()
        guard bits != 0, flushesSubnormals != flush else { return }
        let control = distill_fp_control()
        distill_set_fp_control(flush ? control | bits : control & ~bits)
        blas_thread_shutdown_()
        blas_thread_init()
        #endif
    }
}

/// Runs `body(i)` for every `i` in `0..<count` on Dispatch's worker threads, each in the calling
/// thread's floating-point mode (`FloatingPointMode`), and returns when all have run. Inside
/// `recordingGemmCalls` each chunk's `gemm` calls are recorded too (`GemmWorker`). Inside a part
/// of `splitAcrossCores`, which has a core of its own, the chunks run in order on the calling
/// thread.
public func concurrentChunks(_ count: Int, _ body: (Int) -> Void) {
    if CorePart.isActive {
        for i in 0..<count { body(i) }
        return
    }
    let control = FloatingPointMode.current
    // A region inside a recorded chunk is not one of its own: its workers record nothing.
    let recorder = GemmRecorder.current
    let lists = GemmRecorder.chunk == nil ? recorder?.beginRegion(chunks: count) : nil
    withoutActuallyEscaping(body) { body in
        let box = UncheckedSendableBox(body)
        let recording = UncheckedSendableBox((recorder, lists))
        DispatchQueue.concurrentPerform(iterations: count) { i in
            FloatingPointMode.adopt(control)
            guard let lists = recording.value.1 else { return box.value(i) }
            GemmRecorder.$current.withValue(recording.value.0) {
                GemmRecorder.$chunk.withValue(lists[i]) { box.value(i) }
            }
        }
    }
}

private struct UncheckedSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
