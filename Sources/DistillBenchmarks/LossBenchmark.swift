import DistillKit

/// Times the distillation loss, forward and backward (value and gradient), for the shapes of the
/// losses issue, and compares its effective bandwidth (12 N C bytes: read student, read teacher,
/// write gradient) with the machine's copy bandwidth measured in the same run.
func runLossBenchmarks(quick: Bool, filter: String?) throws {
    let copy = copyBandwidth()
    print(
        "Distillation loss forward + backward (T = 4, alpha = 0.7, labels), median of \(quick ? 5 : 15):"
    )
    print("machine copy bandwidth (memcpy of 256 MB, read + write): \(format(copy, 1)) GB/s")
    print("shape [N, C]        ms     GB/s  of copy bw  PyTorch 2.15 ms*  speed-up")
    let reference: [Double] = [1.29, 21.5, 93.5, 45.8]
    let shapes = [(8192, 10), (2048, 1000), (256, 32000), (32, 128_256)]
    let loss = try DistillationLoss(temperature: 4, alpha: 0.7)
    for (index, (n, c)) in shapes.enumerated()
    where filter.map({ "[\(n), \(c)]".contains($0) }) ?? true {
        var generator = SeededGenerator(seed: UInt64(index))
        let s = (0..<(n * c)).map { _ in generator.nextNormal() * 3 }
        let t = (0..<(n * c)).map { _ in generator.nextNormal() * 3 }
        let y = (0..<n).map { _ in Int32(generator.next() % UInt64(c)) }
        var g = [Float](repeating: 0, count: n * c)
        try s.withUnsafeBufferPointer { sb in
            try t.withUnsafeBufferPointer { tb in
                try y.withUnsafeBufferPointer { yb in
                    try g.withUnsafeMutableBufferPointer { gradient in
                        let gb = gradient
                        let run = {
                            _ = try loss.evaluate(
                                studentLogits: sb, teacher: .logits(tb), labels: yb, rows: n,
                                classes: c, gradient: gb)
                        }
                        for _ in 0..<3 { try run() }
                        var times: [Double] = []
                        for _ in 0..<(quick ? 5 : 15) {
                            times.append(try secondsPerCall(quick ? 3 : 10, run))
                        }
                        let seconds = median(times)
                        let gbs = 12 * Double(n * c) / seconds / 1e9
                        print(
                            "\("[\(n), \(c)]".padding(toLength: 16, withPad: " ", startingAt: 0))\(pad(format(seconds * 1000, 3), 8))\(pad(format(gbs, 1), 9))\(pad(format(100 * gbs / copy, 0) + "%", 12))\(pad(format(reference[index], 2), 18))\(pad(format(reference[index] / (seconds * 1000), 1) + "x", 10))"
                        )
                    }
                }
            }
        }
    }
    print(
        "* PyTorch figures are the losses issue's, measured on this machine class with 2 threads (not in this run)."
    )
    if filter == nil { try printOneCoreCost(loss, quick: quick) }
}

/// The row kernel's cost per element on one core with its rows in cache: [64, 1000] stays under the
/// threading threshold (`rows * classes < 65,536`) and its inputs and gradient (768 KB) fit in L2.
func printOneCoreCost(_ loss: DistillationLoss, quick: Bool) throws {
    let n = 64
    let c = 1000
    var generator = SeededGenerator(seed: 9)
    let s = (0..<(n * c)).map { _ in generator.nextNormal() * 3 }
    let t = (0..<(n * c)).map { _ in generator.nextNormal() * 3 }
    let y = (0..<n).map { _ in Int32(generator.next() % UInt64(c)) }
    var g = [Float](repeating: 0, count: n * c)
    let seconds = try s.withUnsafeBufferPointer { sb in
        try t.withUnsafeBufferPointer { tb in
            try y.withUnsafeBufferPointer { yb in
                try g.withUnsafeMutableBufferPointer { gb in
                    let gradient = gb
                    let run = {
                        _ = try loss.evaluate(
                            studentLogits: sb, teacher: .logits(tb), labels: yb, rows: n,
                            classes: c, gradient: gradient)
                    }
                    for _ in 0..<20 { try run() }
                    return median(
                        try (0..<(quick ? 5 : 15)).map { _ in try secondsPerCall(100, run) })
                }
            }
        }
    }
    print(
        "one core, rows in cache ([\(n), \(c)]): \(format(seconds / Double(n * c) * 1e9, 2)) ns per element"
    )
}

/// Copy bandwidth in GB/s (bytes read + bytes written per second), median of 5 copies of 256 MB.
func copyBandwidth() -> Double {
    let count = 64 << 20
    let a = UnsafeMutablePointer<Float>.allocate(capacity: count)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer {
        a.deallocate()
        b.deallocate()
    }
    a.initialize(repeating: 1, count: count)
    b.initialize(repeating: 0, count: count)
    var times: [Double] = []
    for _ in 0..<5 {
        let start = monotonicSeconds()
        b.update(from: a, count: count)
        times.append(monotonicSeconds() - start)
    }
    return 2 * Double(count * 4) / median(times) / 1e9
}
