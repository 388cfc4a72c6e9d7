#if canImport(Glibc)
import CBLAS
import Glibc
#endif

/// The OpenBLAS kernel family matrix products run on, and a better one when OpenBLAS did not
/// recognise the CPU.
///
/// OpenBLAS picks its kernels when the library is loaded, from the CPU model it knows. A release
/// older than the CPU falls back to its generic SSE3 kernel, "Prescott": Debian 12's OpenBLAS
/// 0.3.21 does so on Intel's Sapphire Rapids and Emerald Rapids, where its AVX-512 kernel
/// ("SkylakeX") trains the 784-800-800-10 MLP 3.3 times faster (BENCHMARKS.md). Setting
/// `OPENBLAS_CORETYPE` chooses the kernel, but only before the library loads, so the programs
/// re-execute themselves with it set (`useBestSettings`, which also shortens how long idle BLAS
/// threads spin). A setting chosen by the user in the environment is always kept. On Apple
/// platforms (Accelerate) there is nothing to choose.
public enum BLASKernel {
    /// The kernel OpenBLAS runs on ("Haswell", "SkylakeX", "Prescott", ...), or "Accelerate".
    public static var current: String {
        #if canImport(Glibc)
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
        #else
        return "Accelerate"
        #endif
    }

    /// The kernel to ask for, or nil to keep `current`: only when OpenBLAS runs its generic
    /// kernel, `OPENBLAS_CORETYPE` is not set, and the CPU's `flags` (as `/proc/cpuinfo` lists
    /// them) have AVX-512 (`SkylakeX`) or AVX2 with FMA (`Haswell`).
    static func better(than current: String, flags: Set<String>, coreTypeIsSet: Bool) -> String? {
        guard !coreTypeIsSet, current == "Prescott" else { return nil }
        if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) {
            return "SkylakeX"
        }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// How long, as a power of two of CPU cycles, OpenBLAS's idle threads spin waiting for the
    /// next product before they sleep: 2^20, about 0.4 ms, instead of OpenBLAS's 2^28 (0.1 s). On
    /// two cores a spinning BLAS thread takes a core from the element-wise work between products
    /// (a transformer step's GELU, softmax and LayerNorm): the 4 x 256 transformer step at
    /// batch 32 x 128 took 539 ms spinning 2^28 cycles and 479 ms at 2^20 (BENCHMARKS.md).
    static let threadTimeout = "20"

    /// Re-executes this program with the OpenBLAS settings it reads only when it loads, when
    /// they are not set: `OPENBLAS_CORETYPE` set to a better kernel when `better` finds one, and
    /// `OPENBLAS_THREAD_TIMEOUT` (see `threadTimeout`) when OpenBLAS runs several threads. Returns
    /// when there is nothing to set (or the re-execution fails, leaving the program as it was).
    /// Call it first thing in `main`, before any thread starts or output is written.
    public static func useBestSettings() {
        #if canImport(Glibc)
        var settings: [(name: String, value: String)] = []
        if let kernel = better(
            than: current, flags: cpuFlags(), coreTypeIsSet: getenv("OPENBLAS_CORETYPE") != nil)
        {
            settings.append(("OPENBLAS_CORETYPE", kernel))
        }
        if getenv("OPENBLAS_THREAD_TIMEOUT") == nil && openblas_get_num_threads() > 1 {
            settings.append(("OPENBLAS_THREAD_TIMEOUT", threadTimeout))
        }
        guard !settings.isEmpty else { return }
        for (name, value) in settings { setenv(name, value, 1) }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        for (name, _) in settings { unsetenv(name) }  // only reached when execv failed
        #endif
    }

    /// The CPU feature flags of the first processor in `/proc/cpuinfo` (empty when unreadable).
    static func cpuFlags() -> Set<String> {
        #if canImport(Glibc)
        // size 0 to stat: read by lines
        guard let file = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(file) }
        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        while getline(&buffer, &capacity, file) > 0, let buffer {
            let line = String(cString: buffer)
            guard line.hasPrefix("flags"), let colon = line.firstIndex(of: ":") else { continue }
            return Set(
                line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" })
                    .map(String.init))
        }
        #endif
        return []
    }
}
