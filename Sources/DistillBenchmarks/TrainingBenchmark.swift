import DistillCore
import DistillKit
import Foundation

/// Times a full training step (forward, cross-entropy, backward, SGD-momentum update) against the
/// GEMM floor: the same BLAS calls the step makes, recorded from one step and replayed on their
/// own buffers. Rounds alternate step and floor timings so both see the same machine load. The
/// update's own floor (its `saxpy` calls replayed alone) is printed beside its phase.
/// With `unfoldColumns`, every convolution unfolds its columns again in the backward pass instead
/// of keeping them from the forward pass. `parts`: the parts the step splits its batch into
/// (`TrainingStep`'s default when nil).
func runTrainingBenchmarks(
    quick: Bool, breakdown: Bool, unfoldColumns: Bool, parts: Int?, filter: String?
) throws {
    let cases:
        [(name: String, spec: String, inputShape: [Int], dropout: Float, inputDropout: Float)] = [
            ("MLP 784-1200-1200-10, dropout 0.5/0.2", "mlp:1200,1200", [784], 0.5, 0.2),
            ("MLP 784-800-800-10", "mlp:800,800", [784], 0, 0),
            ("CNN conv32-conv64-fc256, dropout 0.3", "cnn:32,64/fc:256", [1, 28, 28], 0.3, 0),
        ]
    let batchSize = 128
    print(
        "Training step, batch \(batchSize), \(quick ? 5 : 25) alternating rounds of 3 steps and 3 floors; medians:"
    )
    print(
        "model                                      step ms  GEMM floor ms  step/floor   quartiles  samples/s"
    )
    for c in cases where filter.map({ c.name.contains($0) }) ?? true {
        var generator = SeededGenerator(seed: 1)
        let model = try Model(
            spec: ArchitectureSpec(parsing: c.spec), inputShape: c.inputShape, classes: 10,
            dropout: c.dropout, inputDropout: c.inputDropout, generator: &generator)
        if unfoldColumns {
            for case let conv as Conv2D in model.network.layers { conv.keptColumnsBytes = 0 }
        }
        let step = TrainingStep(
            model: model, optimizer: SGD(learningRate: 0.01, momentum: 0.9), parts: parts)
        let perExample = c.inputShape.reduce(1, *)
        let batch = Tensor(
            shape: [batchSize] + c.inputShape,
            values: (0..<(batchSize * perExample)).map { _ in generator.nextUniform() })
        let labels = (0..<batchSize).map { _ in Int32(generator.next() % 10) }
        let runStep = {
            try labels.withUnsafeBufferPointer { _ = try step.run(batch: batch, labels: $0) }
        }
        // Record the step's GEMM calls, and which of them the forward pass makes.
        try runStep()
        let forwardCount = recordingGemmCalls { _ = model.forward(batch, mode: .training) }.calls
            .count
        let calls = try recordingGemmCalls { try runStep() }.calls
        let forwardFloor = GemmReplay(Array(calls[..<forwardCount]))
        let backwardFloor = GemmReplay(Array(calls[forwardCount...]))
        let floor = {
            forwardFloor.run()
            backwardFloor.run()
        }
        let updateFloor = AxpyReplay(counts: model.parameters.map(\.value.count))
        for _ in 0..<3 {
            try runStep()
            floor()
            updateFloor.run()
        }
        // Many short rounds, each timing the step and then its floor; the ratio is taken per round
        // (so a burst of load from elsewhere on the shared machine affects one round, not one side).
        // The step's own clock splits each round's steps into phases.
        var stepTimes: [Double] = []
        var floorTimes: [Double] = []
        var ratios: [Double] = []
        // forward, its GEMMs, loss, backward, its GEMMs, update, its saxpy calls
        var phases: [[Double]] = Array(repeating: [], count: 7)
        let reps = 3
        let (stealBefore, caseStart) = (stolenSeconds(), monotonicSeconds())
        for _ in 0..<(quick ? 5 : 25) {
            step.timing = StepTiming()
            let stepTime = try secondsPerCall(reps, runStep)
            let forwardGemms = secondsPerCall(reps) { forwardFloor.run() }
            let backwardGemms = secondsPerCall(reps) { backwardFloor.run() }
            let updateAxpys = secondsPerCall(reps) { updateFloor.run() }
            let bare = forwardGemms + backwardGemms
            stepTimes.append(stepTime)
            floorTimes.append(bare)
            ratios.append(stepTime / bare)
            let t = step.timing
            let n = Double(t.steps)
            for (k, value) in [
                t.forward / n, forwardGemms, t.loss / n, t.backward / n, backwardGemms,
                t.update / n,
                updateAxpys,
            ].enumerated() {
                phases[k].append(value)
            }
        }
        let stolen = stolenSeconds().flatMap { after in stealBefore.map { after - $0 } }
        let caseSeconds = monotonicSeconds() - caseStart
        let s = median(stepTimes)
        let f = median(floorTimes)
        let sortedRatios = ratios.sorted()
        let quartiles = (
            sortedRatios[sortedRatios.count / 4], sortedRatios[(3 * sortedRatios.count) / 4]
        )
        if breakdown {
            printLayerBreakdown(model: model, batch: batch)
            print("  \(panelGemmShare(calls))")
        }
        print(
            "\(c.name.padding(toLength: 42, withPad: " ", startingAt: 0))\(pad(format(s * 1000), 8))\(pad(format(f * 1000), 15))\(pad(format(median(ratios)), 12))\(pad(format(quartiles.0) + "-" + format(quartiles.1), 12))\(pad(format(Double(batchSize) / s, 0), 11))"
        )
        let p = phases.map { format(median($0) * 1000) }
        let steal =
            stolen.map {
                "; host steal \(format(100 * $0 / (caseSeconds * Double(sysconf(Int32(_SC_NPROCESSORS_ONLN)))), 1))% of the CPU time"
            } ?? ""
        print(
            "  phases of the timed steps, ms: forward \(p[0]) (GEMMs \(p[1])), loss \(p[2]), backward \(p[3]) (GEMMs \(p[4])), update \(p[5]) (saxpy \(p[6]))\(steal)"
        )
    }
}

/// Buffers for replaying a list of GEMM calls with their shapes, each on its own compact operands
/// (leading dimension = the width the call uses). The step's calls may stride through batch-wide
/// buffers (a convolution's chunk of kept columns, or of channel-major activations, is a slice of
/// rows as long as the batch); replaying those strides on buffers of their own would take one
/// batch-sized buffer per call (1.5 GB for the CNN), and compact operands are, if anything, the
/// faster case for BLAS, so the floor does not flatter the step. Calls that workers made (the
/// attention's per-sequence, per-head products, a dense layer's blocks of rows) are replayed on
/// the workers, chunk by chunk, as the step made them (`plan`).
final class GemmReplay {
    let calls: [GemmCall]
    /// Each call's operands, allocated once: replaying writes `c` in place (no copy on write).
    let buffers: [(a: Tensor, b: Tensor, c: Tensor)]

    init(_ traced: [GemmCall]) {
        calls = traced.map(\.compacted)
        var generator = SeededGenerator(seed: 2)
        buffers = calls.map { call in
            let rowsA = call.transA == .none ? call.m : call.k
            let rowsB = call.transB == .none ? call.k : call.n
            func random(_ count: Int) -> Tensor {
                Tensor(shape: [count], values: (0..<count).map { _ in generator.nextUniform() })
            }
            return (
                random(rowsA * call.lda), random(rowsB * call.ldb),
                Tensor(zeros: [call.m * call.ldc])
            )
        }
    }

    /// The replay in the order of the recording: a call made on the recording thread alone, the
    /// calls of a `concurrentChunks` region chunk by chunk on the workers, each chunk's in its
    /// order, with BLAS on one thread if it was then (`GemmWorker`).
    private lazy var plan: [Step] = {
        var plan: [Step] = []
        var index = 0
        while index < calls.count {
            guard let worker = calls[index].worker else {
                plan.append(.call(index))
                index += 1
                continue
            }
            var chunks = Array(repeating: [Int](), count: worker.chunks)
            while index < calls.count, let w = calls[index].worker, w.region == worker.region {
                chunks[w.chunk].append(index)
                index += 1
            }
            plan.append(.region(chunks, singleThreadedBLAS: worker.singleThreadedBLAS))
        }
        return plan
    }()

    private enum Step {
        case call(Int)
        case region([[Int]], singleThreadedBLAS: Bool)
    }

    func run() {
        for step in plan {
            switch step {
            case .call(let index): run(index)
            case .region(let chunks, let single):
                let body = {
                    concurrentChunks(chunks.count) { for i in chunks[$0] { self.run(i) } }
                }
                if single { withSingleThreadedBLAS(body) } else { body() }
            }
        }
    }

    func run(_ index: Int) {
        let (call, (a, b, c)) = (calls[index], buffers[index])
        gemm(
            call.transA, call.transB, m: call.m, n: call.n, k: call.k, alpha: call.alpha,
            a: a.pointer, lda: call.lda, b: b.pointer, ldb: call.ldb,
            beta: call.beta, c: c.pointer, ldc: call.ldc)
    }

    /// The replay's time by shape, the costliest first: one line per distinct (transposes, m, n,
    /// k) with its number of calls, their total ms (each call timed alone, the median of
    /// `rounds`, on one BLAS thread if it was made so) and GFLOP/s.
    func shapes(rounds: Int = 5) -> [String] {
        var totals: [String: (calls: Int, seconds: Double, flops: Double)] = [:]
        for (index, call) in calls.enumerated() {
            // A call a worker made with BLAS on one thread is timed so.
            let alone = { median((0..<rounds).map { _ in secondsPerCall(1) { self.run(index) } }) }
            let seconds =
                call.worker?.singleThreadedBLAS == true ? withSingleThreadedBLAS(alone) : alone()
            let key = shapeName(call.transA, call.transB, m: call.m, n: call.n, k: call.k)
            let old = totals[key] ?? (0, 0, 0)
            totals[key] = (
                old.calls + 1, old.seconds + seconds,
                old.flops + 2 * Double(call.m * call.n * call.k)
            )
        }
        return totals.sorted { $0.value.seconds > $1.value.seconds }.map { key, total in
            "\(key): \(total.calls) calls, \(format(total.seconds * 1000, 2)) ms, "
                + "\(format(total.flops / total.seconds / 1e9, 0)) GFLOP/s"
        }
    }
}

/// How many of a step's recorded products `gemm` sends to our own kernel in this build.
func panelGemmShare(_ calls: [GemmCall]) -> String {
    let taken = calls.filter {
        panelGemmTakes($0.transA, $0.transB, m: $0.m, n: $0.n, k: $0.k, alpha: $0.alpha)
    }
    return "products on panelGemm: \(taken.count) of \(calls.count) calls"
}

/// A product's shape as the benchmarks print it: its transposes, then m x n x k ("NT 512 x 256 x
/// 64": A as stored, B transposed).
func shapeName(_ transA: MatrixTranspose, _ transB: MatrixTranspose, m: Int, n: Int, k: Int)
    -> String
{
    "\(transA == .none ? "N" : "T")\(transB == .none ? "N" : "T") \(m) x \(n) x \(k)"
}

/// The SGD update's BLAS calls replayed alone: `saxpy` (`y += alpha * x`, two streams read and one
/// written) over one pair of tensors of its own per parameter, as `w -= lr * v` in the step.
final class AxpyReplay {
    let pairs: [(x: Tensor, y: Tensor)]

    init(counts: [Int]) {
        pairs = counts.map { (Tensor(zeros: [$0]), Tensor(zeros: [$0])) }
        for (x, _) in pairs { x.fill(0.5) }
    }

    func run() {
        for (x, y) in pairs { axpy(count: x.count, alpha: -1e-7, x: x.pointer, y: y.pointer) }
    }
}

/// Times each layer's forward and backward pass beside its own GEMMs, on the activations of a real
/// forward pass, for profiling (the step's phases are printed from the timed steps themselves).
func printLayerBreakdown(model: Model, batch: Tensor) {
    var x = batch.reshaped([batch.shape[0]] + model.networkInputShape)
    var parts: [String] = []
    for (layer, layout) in zip(model.network.layers, model.network.layouts) {
        let timed = timeLayer(layer, input: x, layout: layout)
        parts.append(timed.text)
        x = timed.output
    }
    print(
        "  per layer, forward/backward ms (their GEMMs):\n    " + parts.joined(separator: "\n    "))
}

/// One layer's forward and backward pass on `input` (training mode, 20 calls each, a gradient of
/// 0.01 everywhere), beside the same passes' GEMMs replayed: "descriptor f/b (GEMMs f/b)" in ms,
/// and a copy of the layer's output, the next layer's input.
func timeLayer(_ layer: any Layer, input: Tensor, layout: ActivationLayout = .nchw) -> (
    text: String, output: Tensor
) {
    let recorded = recordingGemmCalls { layer.forward(input, mode: .training, layout: layout) }
    var y = recorded.result
    let forwardCalls = GemmReplay(recorded.calls)
    let f = secondsPerCall(20) { y = layer.forward(input, mode: .training, layout: layout) }
    let g = Tensor(zeros: y.shape)
    g.fill(0.01)
    for p in layer.parameters { p.zeroGradient() }
    let backwardCalls = GemmReplay(recordingGemmCalls { _ = layer.backward(g) }.calls)
    let b = secondsPerCall(20) {
        for p in layer.parameters { p.zeroGradient() }
        _ = layer.backward(g)
    }
    var text = "\(layer.descriptor) \(format(f * 1000, 2))/\(format(b * 1000, 2))"
    if !forwardCalls.calls.isEmpty {
        let ff = secondsPerCall(20) { forwardCalls.run() }
        let bf = secondsPerCall(20) { backwardCalls.run() }
        text += " (GEMMs \(format(ff * 1000, 2))/\(format(bf * 1000, 2)))"
    }
    return (text, y.copy())
}
