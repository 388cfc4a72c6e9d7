import DistillCore
import DistillKit

/// Samples per second of a distillation step on the two paths a teacher takes: cached (its
/// outputs computed once, the step only reads them) and consistent (the teacher runs in inference
/// mode on every batch the student sees, as under augmentation). The demo's models: a
/// 784-800-800-10 student, a `cnn:32,64/fc:256` teacher, batch 128 with 5 labelled rows, T 4,
/// alpha 0.7, the hard term over all rows. Rounds alternate the two paths; medians.
func runDistillationPathBenchmarks(quick: Bool, filter: String?) throws {
    guard filter.map({ "distillation paths".contains($0) }) ?? true else { return }
    let batchSize = 128
    var generator = SeededGenerator(seed: 3)
    let student = try Model(
        spec: ArchitectureSpec(parsing: "mlp:800,800"), inputShape: [1, 28, 28], classes: 10,
        generator: &generator)
    let teacher = try Model(
        spec: ArchitectureSpec(parsing: "cnn:32,64/fc:256"), inputShape: [1, 28, 28], classes: 10,
        dropout: 0.3, generator: &generator)
    let step = TrainingStep(model: student, optimizer: SGD(learningRate: 0.01, momentum: 0.9))
    let loss = try DistillationLoss(temperature: 4, alpha: 0.7, hardReduction: .all)
    let inputs = Tensor(
        shape: [batchSize, 1, 28, 28],
        values: (0..<(batchSize * 784)).map { _ in generator.nextUniform() })
    let labels = (0..<batchSize).map { $0 % 25 == 0 ? Int32(generator.next() % 10) : -1 }
    let batch = Batch(
        inputs: inputs, labels: labels, teacher: nil, indices: Array(0..<batchSize)[...])
    let cached = teacher.logits(inputs)
    let live = LiveTeachers([teacher])
    func distil(_ output: TeacherOutput) throws {
        _ = try labels.withUnsafeBufferPointer {
            try step.run(batch: inputs, teacher: output, labels: $0, loss: loss)
        }
    }
    let runCached = { try distil(.logits(UnsafeBufferPointer(cached.buffer))) }
    let runConsistent = { try distil(live.output(for: batch)) }
    try runCached()
    try runConsistent()
    let rounds = quick ? 3 : 9
    var cachedTimes: [Double] = []
    var consistentTimes: [Double] = []
    for _ in 0..<rounds {
        cachedTimes.append(try secondsPerCall(3) { try runCached() })
        consistentTimes.append(try secondsPerCall(3) { try runConsistent() })
    }
    print(
        "Distillation step, 784-800-800-10 student, cnn:32,64/fc:256 teacher, batch \(batchSize), \(rounds) alternating rounds; medians:"
    )
    print("path                                       step ms  samples/s")
    for (name, times) in [
        ("distillation paths: cached teacher", cachedTimes),
        ("distillation paths: consistent teacher", consistentTimes),
    ] {
        let s = median(times)
        print(
            name.padding(toLength: 42, withPad: " ", startingAt: 0)
                + "\(format(s * 1000, 2).leftPadded(8))  \(format(Double(batchSize) / s, 0).leftPadded(9))"
        )
    }
}
