import DistillCore
import DistillKit
import Foundation

/// The language models the transformer benchmarks time, and the steps per timed round of each.
let transformerCases: [(name: String, spec: String, repetitions: Int)] = [
    ("transformer 4 x 256, 4 heads", "transformer:layers=4,dim=256,heads=4,context=128", 1),
    ("transformer 1 x 64, 4 heads", "transformer:layers=1,dim=64,heads=4,context=128", 5),
]

/// A training step of one of `transformerCases` on a seeded random batch of 32 windows of 128
/// bytes (AdamW), and the closure that runs it once.
func makeTransformerStep(spec: String, parts: Int?) throws -> (
    model: Model, step: TrainingStep, inputs: Tensor, run: () throws -> Void
) {
    let (batch, context) = (32, 128)
    var generator = SeededGenerator(seed: 1)
    let model = try Model(
        spec: ArchitectureSpec(parsing: spec), inputShape: [context], classes: 256,
        generator: &generator)
    let step = TrainingStep(model: model, optimizer: Adam.adamW(learningRate: 1e-3), parts: parts)
    let inputs = Tensor(
        shape: [batch, context],
        values: (0..<(batch * context)).map { _ in Float(generator.next() % 256) })
    let labels = (0..<(batch * context)).map { _ in Int32(generator.next() % 256) }
    let run = {
        try labels.withUnsafeBufferPointer { _ = try step.run(batch: inputs, labels: $0) }
    }
    return (model, step, inputs, run)
}

/// `transformer --serve`: builds the one case `filter` names, runs a step, prints `ready`, then
/// for each line of standard input holding a number N runs N steps and prints the seconds per
/// step, until standard input ends. `scripts/bench-paired` drives this process and PyTorch's in
/// turn, round by round, so that the two steps meet the same load.
func serveTransformerSteps(parts: Int?, filter: String?) throws {
    let matching = transformerCases.filter { c in filter.map { c.name.contains($0) } ?? false }
    guard matching.count == 1, let c = matching.first else {
        FileHandle.standardError.write(
            Data("DistillBenchmarks: --serve needs a --case naming one transformer case\n".utf8))
        exit(2)
    }
    let (_, _, _, run) = try makeTransformerStep(spec: c.spec, parts: parts)
    try run()
    // Written straight to the pipe, not through stdout's buffer.
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    while let line = readLine() {
        guard let steps = Int(line.trimmingCharacters(in: .whitespaces)), steps >= 1 else {
            FileHandle.standardError.write(
                Data(
                    "DistillBenchmarks: --serve reads whole numbers of steps, not '\(line)'\n".utf8)
            )
            exit(2)
        }
        let seconds = try secondsPerCall(steps) { try run() }
        FileHandle.standardOutput.write(Data("\(seconds)\n".utf8))
    }
}

/// Times one training step of a byte-level transformer language model (forward, cross-entropy at
/// every position, backward, AdamW) at batch 32 x context 128, against its GEMM floor (the step's
/// own BLAS calls, recorded once and replayed on their own buffers, the attention's small batched
/// products included, on the workers as the step issues them). Rounds alternate step and floor;
/// medians of the per-round figures. `parts`: the parts the step splits its batch into
/// (`TrainingStep`'s default when nil).
func runTransformerBenchmarks(quick: Bool, breakdown: Bool, parts: Int?, filter: String?) throws {
    let (batch, context) = (32, 128)
    let rounds = quick ? 3 : 9
    print(
        "Transformer language-model step, batch \(batch) x context \(context), AdamW, \(rounds) alternating rounds; medians:"
    )
    print("model                                      step ms  GEMM floor ms  step/floor  tokens/s")
    for c in transformerCases where filter.map({ c.name.contains($0) }) ?? true {
        let (model, step, inputs, run) = try makeTransformerStep(spec: c.spec, parts: parts)
        try run()
        let floor = GemmReplay(try recordingGemmCalls { try run() }.calls)
        floor.run()
        let repetitions = c.repetitions
        var steps: [Double] = []
        var floors: [Double] = []
        var phases: [[Double]] = Array(repeating: [], count: 4)  // forward, loss, backward, update
        for _ in 0..<rounds {
            step.timing = StepTiming()
            steps.append(try secondsPerCall(repetitions) { try run() })
            let (t, n) = (step.timing, Double(step.timing.steps))
            for (k, seconds) in [t.forward, t.loss, t.backward, t.update].enumerated() {
                phases[k].append(seconds / n)
            }
            floors.append(secondsPerCall(repetitions) { floor.run() })
        }
        let (s, f) = (median(steps), median(floors))
        print(
            c.name.padding(toLength: 42, withPad: " ", startingAt: 0)
                + "\(format(s * 1000, 2).leftPadded(8))  \(format(f * 1000, 2).leftPadded(13))"
                + "  \(format(median(zip(steps, floors).map { $0 / $1 }), 2).leftPadded(10))"
                + "  \(format(Double(batch * context) / s, 0).leftPadded(8))")
        let p = phases.map { format(median($0) * 1000, 2) }
        print(
            "  phases of the timed steps, ms: forward \(p[0]), loss \(p[1]), backward \(p[2]), update \(p[3])"
        )
        if breakdown {
            print("  \(panelGemmShare(floor.calls))")
            print(
                "  the GEMM floor by shape (transposes, m x n x k), each call alone:\n    "
                    + floor.shapes().joined(separator: "\n    "))
            printTransformerBreakdown(
                model: model, batch: inputs,
                parts: parts ?? TrainingStep.defaultParts(for: model))
        }
    }

    // A live teacher's forward pass (inference mode) on the student's batch: all 32 windows at
    // once, and in the chunks `LiveTeachers` uses to bound its memory (512 positions at a time):
    // by the model alone (its products split by BLAS), and each chunk split over the cores (the
    // default for a transformer).
    guard filter.map({ "teacher forward 4 x 256".contains($0) }) ?? true else { return }
    var generator = SeededGenerator(seed: 2)
    let teacher = try Model(
        spec: ArchitectureSpec(parsing: "transformer:layers=4,dim=256,heads=4,context=128"),
        inputShape: [context], classes: 256, generator: &generator)
    let inputs = Tensor(
        shape: [batch, context],
        values: (0..<(batch * context)).map { _ in Float(generator.next() % 256) })
    let (alone, split) = (LiveTeachers([teacher], parts: 1), LiveTeachers([teacher]))
    let chunked = Batch(
        inputs: inputs, labels: nil, teacher: nil, indices: Array(0..<batch)[...])
    _ = teacher.forward(inputs, mode: .inference)
    _ = alone.output(for: chunked)
    _ = split.output(for: chunked)
    var times: [[Double]] = [[], [], []]  // whole, chunks by the model alone, chunks split
    for _ in 0..<rounds {
        times[0].append(secondsPerCall(1) { _ = teacher.forward(inputs, mode: .inference) })
        times[1].append(secondsPerCall(1) { _ = alone.output(for: chunked) })
        times[2].append(secondsPerCall(1) { _ = split.output(for: chunked) })
    }
    let ms = times.map { format(median($0) * 1000, 1) }
    print(
        "teacher forward 4 x 256, batch 32 x 128: whole batch \(ms[0]) ms; in chunks of 512 positions, by the model alone \(ms[1]) ms, split over \(TrainingStep.defaultParts(for: teacher)) cores \(ms[2]) ms"
    )
}

/// Each layer of the model as `printLayerBreakdown` times it, then the parts of its first block
/// one by one (each on the previous part's output; the second LayerNorm on the block's input
/// instead of the residual sum, which has the same shape). The parts run without their residuals,
/// which the block adds as the projections lay their biases down: the block's own time, less its
/// parts', is what reading the residuals costs there. All on one core for the examples of one of
/// the step's `parts`, as each core runs its part in the step.
func printTransformerBreakdown(model: Model, batch whole: Tensor, parts: Int) {
    let examples = whole.shape[0] / parts
    // The first examples, a view of the batch's storage.
    let batch = Tensor(shape: [examples] + whole.shape.dropFirst(), storage: whole.storage)
    print("  one part of the batch (\(examples) examples) on one core:")
    splitAcrossCores(1) { _ in breakDownTransformer(model: model, batch: batch) }
}

private func breakDownTransformer(model: Model, batch: Tensor) {
    printLayerBreakdown(model: model, batch: batch)
    guard let index = model.network.layers.firstIndex(where: { $0 is TransformerBlock }),
        let block = model.network.layers[index] as? TransformerBlock
    else { return }
    var x = batch
    for layer in model.network.layers[..<index] { x = layer.forward(x, mode: .inference).copy() }
    let blockInput = x
    var parts: [String] = []
    let blockParts: [any Layer] = [
        block.norm1, block.attention, block.norm2, block.expand, block.activation, block.project,
    ]
    for (i, part) in blockParts.enumerated() {
        let timed = timeLayer(part, input: i == 2 ? blockInput : x)
        parts.append(timed.text)
        x = timed.output
    }
    print(
        "  the first block's parts, forward/backward ms (their GEMMs):\n    "
            + parts.joined(separator: "\n    "))
}
