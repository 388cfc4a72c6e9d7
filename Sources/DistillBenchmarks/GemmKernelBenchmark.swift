import DistillCore

/// Our own GEMM kernel (`panelGemm`) against OpenBLAS, both on one thread, at the shapes of the
/// transformer benchmark's dense products (a block of 512 rows of a width-64 model's layers, and
/// of the 4 x 256 teacher's; the width-64 weight gradients over 4096 rows) and at neighbours it
/// does not take (wider or deeper layers, attention tiles: a 16-wide head's scores, a 64-wide
/// head's dV). Each call on the same buffers
/// (hot caches), alternating, the median of the rounds; "taken" says whether `gemm` sends the call
/// to `panelGemm` in this build.
func runGemmKernelBenchmarks(quick: Bool) {
    let shapes: [(MatrixTranspose, MatrixTranspose, m: Int, n: Int, k: Int)] = [
        (.none, .transpose, 512, 256, 64), (.none, .none, 512, 64, 256),
        (.none, .transpose, 512, 192, 64), (.none, .none, 512, 64, 192),
        (.none, .transpose, 512, 64, 64), (.none, .none, 512, 256, 64),
        (.none, .transpose, 512, 64, 256), (.none, .transpose, 512, 256, 256),
        (.none, .none, 512, 256, 256), (.transpose, .none, 256, 64, 4096),
        (.transpose, .none, 192, 64, 4096), (.transpose, .none, 64, 64, 4096),
        (.transpose, .none, 64, 256, 4096), (.none, .transpose, 512, 1024, 256),
        (.none, .transpose, 512, 256, 1024), (.none, .transpose, 32, 128, 16),
        (.transpose, .none, 128, 64, 32), (.transpose, .none, 64, 64, 32),
    ]
    let rounds = quick ? 3 : 9
    print("GEMM kernels on one thread, hot caches, \(rounds) alternating rounds; medians:")
    print(
        "shape (transposes, m x n x k)    OpenBLAS us  GFLOP/s   panel us  GFLOP/s  OpenBLAS/panel  taken"
    )
    var generator = SeededGenerator(seed: 3)
    for (transA, transB, m, n, k) in shapes {
        func random(_ count: Int) -> Tensor {
            Tensor(shape: [count], values: (0..<count).map { _ in generator.nextUniform() - 0.5 })
        }
        let (a, b, c) = (random(m * k), random(k * n), random(m * n))
        let (lda, ldb) = (transA == .none ? k : m, transB == .none ? n : k)
        let flops = 2 * Double(m * n * k)
        let repetitions = max(1, Int(2e8 / flops))
        var (blas, panel): ([Double], [Double]) = ([], [])
        withSingleThreadedBLAS {
            for _ in 0..<rounds {
                blas.append(
                    secondsPerCall(repetitions) {
                        blasGemm(
                            transA, transB, m: m, n: n, k: k, alpha: 1, a: a.pointer, lda: lda,
                            b: b.pointer, ldb: ldb, beta: 0, c: c.pointer, ldc: n)
                    })
                panel.append(
                    secondsPerCall(repetitions) {
                        panelGemm(
                            transA, transB, m: m, n: n, k: k, a: a.pointer, lda: lda,
                            b: b.pointer, ldb: ldb, beta: 0, c: c.pointer, ldc: n)
                    })
            }
        }
        let (t, p) = (median(blas), median(panel))
        let name = shapeName(transA, transB, m: m, n: n, k: k)
        let taken = panelGemmTakes(transA, transB, m: m, n: n, k: k, alpha: 1)
        print(
            name.padding(toLength: 30, withPad: " ", startingAt: 0)
                + format(t * 1e6, 1).leftPadded(13)
                + format(flops / t / 1e9, 0).leftPadded(9)
                + format(p * 1e6, 1).leftPadded(11) + format(flops / p / 1e9, 0).leftPadded(9)
                + format(t / p, 2).leftPadded(16) + (taken ? "yes" : "no").leftPadded(7))
    }
}
