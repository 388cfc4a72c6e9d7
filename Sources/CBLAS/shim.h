// OpenBLAS's C interface (Debian: libopenblas-dev; pkg-config: openblas).
#include <cblas.h>
#include <stdint.h>

// OpenBLAS's thread pool, exported by libopenblas but not declared in cblas.h. Stopping it and
// starting it again makes its worker threads afresh from the calling thread, with that thread's
// floating-point control state (POSIX: a new thread inherits its creator's).
int blas_thread_shutdown_(void);
int blas_thread_init(void);

// The calling thread's floating-point control word: MXCSR on x86-64, FPCR on AArch64.
static inline uint64_t distill_fp_control(void) {
#if defined(__x86_64__)
    uint32_t csr;
    __asm__ __volatile__("stmxcsr %0" : "=m"(csr));
    return csr;
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#else
    return 0;
#endif
}

static inline void distill_set_fp_control(uint64_t value) {
#if defined(__x86_64__)
    uint32_t csr = (uint32_t)value;
    __asm__ __volatile__("ldmxcsr %0" : : "m"(csr));
#elif defined(__aarch64__)
    __asm__ __volatile__("msr fpcr, %0" : : "r"(value));
#else
    (void)value;
#endif
}

// The bits of the control word that flush subnormal results to zero and read subnormal inputs as
// zero: MXCSR's FTZ (bit 15) and DAZ (bit 6); FPCR's FZ (bit 24).
static inline uint64_t distill_fp_flush_bits(void) {
#if defined(__x86_64__)
    return (1u << 15) | (1u << 6);
#elif defined(__aarch64__)
    return 1ull << 24;
#else
    return 0;
#endif
}

// Whether this build's C (and Swift) code targets 512-bit SIMD registers (AVX-512F: a release
// build with -target-cpu native on such a CPU): PanelGemm's register tile needs them.
static inline int distill_simd_is_512_bits(void) {
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}
