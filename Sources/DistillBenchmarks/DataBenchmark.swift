import DistillKit
import Foundation

/// Loads Fashion-MNIST (gunzip and parse) and times one epoch of training batches: 128 normalised
/// floats per batch, shuffled, with 2-pixel jitter.
func runDataBenchmark(quick: Bool) throws {
    let directory: String
    do {
        directory = try DataDirectory.resolve(nil, environment: ProcessInfo.processInfo.environment)
    } catch {
        print("Data pipeline: skipped (\(error))")
        return
    }
    let residentBefore = residentMegabytes()
    let loadStart = monotonicSeconds()
    let data = try DataDirectory.load(directory)
    let loadSeconds = monotonicSeconds() - loadStart
    let residentAfter = residentMegabytes()
    let batcher = try Batcher(
        examples: data.training, batchSize: 128, shuffle: true, seed: 1, jitter: 2)
    var times: [Double] = []
    var batches = 0
    for epoch in 0..<(quick ? 2 : 5) {
        let start = monotonicSeconds()
        batcher.start(epoch: epoch)
        batches = 0
        while batcher.next() != nil { batches += 1 }
        times.append(monotonicSeconds() - start)
    }
    let epoch = median(times)
    print("Data pipeline (\(directory)):")
    print(
        "  load (gunzip + parse) \(data.training.count) + \(data.test.count) images: \(format(loadSeconds, 3)) s"
    )
    print(
        "  one epoch, \(batches) batches of 128, shuffled, 2-pixel jitter: \(format(epoch, 3)) s (\(format(Double(data.training.count) / epoch, 0)) examples/s)"
    )
    print(
        "  resident memory of the loaded data set: \(residentAfter - residentBefore) MB (process: \(residentAfter) MB)"
    )
    try runTeacherRowsBenchmark(examples: data.training, quick: quick)
}

/// One epoch of batches with teacher rows in step (no jitter), the rows held in memory versus
/// memory-mapped from NPY (one file, or three shards), for 10 and 1,000 classes; rounds alternate.
func runTeacherRowsBenchmark(examples: Examples, quick: Bool) throws {
    let directory = NSTemporaryDirectory() + "distill-bench-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    print(
        "  one epoch with teacher rows in step (no jitter), median of rounds; in memory vs memory-mapped NPY:"
    )
    for classes in [10, 1000] {
        let rows = classes == 10 ? examples.count : 20000
        let set = examples.subset(0..<rows)
        let values = (0..<(rows * classes)).map { Float($0 % 977) * 0.01 }
        try NPY.write(floats: values, shape: [rows, classes], to: directory + "/one.npy")
        try FileManager.default.createDirectory(
            atPath: directory + "/shards\(classes)", withIntermediateDirectories: true)
        let cuts = [0, rows / 3, 2 * rows / 3, rows]
        for k in 0..<3 {
            try NPY.write(
                floats: Array(values[(cuts[k] * classes)..<(cuts[k + 1] * classes)]),
                shape: [cuts[k + 1] - cuts[k], classes],
                to: directory + "/shards\(classes)/part-\(k).npy")
        }
        let sources: [(String, TeacherRows)] = [
            ("in memory", .values(values, width: classes)),
            ("mapped, one file", .mapped(try NPYShards(directory + "/one.npy"), rows: nil)),
            (
                "mapped, 3 shards",
                .mapped(try NPYShards(directory + "/shards\(classes)"), rows: nil)
            ),
        ]
        let batchers = try sources.map {
            try Batcher(examples: set, batchSize: 128, shuffle: true, seed: 1, teacherRows: $0.1)
        }
        var times = [[Double]](repeating: [], count: sources.count)
        for round in 0..<(quick ? 3 : 7) {
            for (k, batcher) in batchers.enumerated() {
                let start = monotonicSeconds()
                batcher.start(epoch: round)
                while batcher.next() != nil {}
                times[k].append(monotonicSeconds() - start)
            }
        }
        let line = zip(sources, times).map { "\($0.0) \(format(median($1) * 1000, 1)) ms" }.joined(
            separator: ", ")
        print("    [\(rows), \(classes)]: \(line)")
    }
}

/// Current resident set size in megabytes (Linux: /proc/self/statm; elsewhere the peak).
func residentMegabytes() -> Int {
    if let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
        let fields = text.split(separator: " ")
        if fields.count > 1, let pages = Int(fields[1]) { return pages * 4096 / (1024 * 1024) }
    }
    return peakResidentMegabytes()
}
