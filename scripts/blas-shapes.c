/* The 1 x 64 transformer step's matrix products (batch 32 x context 128), each timed alone in a
 * loop, best of 15 rounds, through the CBLAS of the library it is linked with (OpenBLAS or BLIS)
 * at one thread and at two. With -DWITH_LIBXSMM it times instead the attention's `y = A v`
 * tiles (32 queries x 16 head values x keys) by a libxsmm JIT kernel and by CBLAS on one thread.
 * Built and run by scripts/compare-blas. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int,
                 float, float *, int);
#ifdef WITH_BLIS
void bli_thread_set_num_threads(long);
static void set_threads(int n) { bli_thread_set_num_threads(n); }
#else
void openblas_set_num_threads(int);
static void set_threads(int n) { openblas_set_num_threads(n); }
#endif
#ifdef WITH_LIBXSMM
#include <libxsmm.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *filled(long count, int modulus) {
    float *p = malloc(4 * count);
    for (long i = 0; i < count; i++) p[i] = (i % modulus) * 0.1f;
    return p;
}

int main(void) {
#ifdef WITH_LIBXSMM
    set_threads(1);
    int t = 128, c = 64;
    float *qkv = filled(t * 3 * c, 7), *a = filled(t * t, 5), *y = filled(t * c, 3);
    printf("attention tile y = A v, 32 x 16 x keys: libxsmm and CBLAS, one thread, us per call\n");
    for (int keys = 32; keys <= 128; keys += 32) {
        /* Row-major y [32, 16] = A [32, keys] v [keys, 16] is column-major
         * y^T [16, 32] = v^T [16, keys] A^T [keys, 32]. */
        libxsmm_blasint m = 16, n = 32, k = keys, lda = 3 * c, ldb = t, ldc = c;
        float alpha = 1, beta = 0;
        int flags = LIBXSMM_GEMM_FLAG_BETA_0;
        libxsmm_smmfunction kernel =
            libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, NULL);
        if (!kernel) { printf("keys %d: no libxsmm kernel\n", keys); continue; }
        double jit = 1e9, blas = 1e9;
        for (int round = 0; round < 15; round++) {
            double t0 = now();
            for (int i = 0; i < 20000; i++) kernel(qkv + 2 * c, a, y);
            double d = (now() - t0) / 20000;
            if (d < jit) jit = d;
            t0 = now();
            for (int i = 0; i < 20000; i++)
                cblas_sgemm(RowMajor, NoTrans, NoTrans, 32, 16, keys, 1, a, t, qkv + 2 * c, 3 * c,
                            0, y, c);
            d = (now() - t0) / 20000;
            if (d < blas) blas = d;
        }
        printf("keys %3d: libxsmm %.2f, CBLAS %.2f\n", keys, jit * 1e6, blas * 1e6);
    }
#else
    /* transA, transB, m, n, k: the dense layers' products and the attention's per-tile ones. */
    int shapes[][5] = {
        {1, 0, 256, 64, 4096}, {0, 0, 4096, 64, 256}, {0, 1, 4096, 256, 64},
        {1, 0, 64, 256, 4096}, {0, 0, 4096, 256, 64}, {0, 1, 4096, 64, 256},
        {0, 1, 32, 128, 16},   {0, 0, 32, 16, 128},   {1, 0, 128, 16, 32},
    };
    long most = 4096L * 4096;
    float *a = filled(most, 7), *b = filled(most, 5), *c = filled(most, 3);
    printf("shape (transposes m x n x k): us per call at 1 thread, at 2 threads\n");
    for (int s = 0; s < 9; s++) {
        int ta = shapes[s][0], tb = shapes[s][1], m = shapes[s][2], n = shapes[s][3],
            k = shapes[s][4];
        int lda = ta ? m : k, ldb = tb ? k : n;
        int reps = (long)m * n * k > 1000000 ? 20 : 5000;
        printf("%s%s %4d x %4d x %4d:", ta ? "T" : "N", tb ? "T" : "N", m, n, k);
        for (int threads = 1; threads <= 2; threads++) {
            set_threads(threads);
            double best = 1e9;
            for (int round = 0; round < 15; round++) {
                double t0 = now();
                for (int i = 0; i < reps; i++)
                    cblas_sgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, 1,
                                a, lda, b, ldb, 0, c, n);
                double d = (now() - t0) / reps;
                if (d < best) best = d;
            }
            printf(" %9.1f", best * 1e6);
        }
        printf("\n");
    }
#endif
    return 0;
}
