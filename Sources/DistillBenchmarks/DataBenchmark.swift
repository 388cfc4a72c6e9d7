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
    let loadStart = now()
    let data = try DataDirectory.load(directory)
    let loadSeconds = now() - loadStart
    let residentAfter = residentMegabytes()
    let batcher = try Batcher(examples: data.training, batchSize: 128, shuffle: true, seed: 1, jitter: 2)
    var times: [Double] = []
    var batches = 0
    for epoch in 0..<(quick ? 2 : 5) {
        let start = now()
        batcher.start(epoch: epoch)
        batches = 0
        while batcher.next() != nil { batches += 1 }
        times.append(now() - start)
    }
    let epoch = median(times)
    print("Data pipeline (\(directory)):")
    print("  load (gunzip + parse) \(data.training.count) + \(data.test.count) images: \(format(loadSeconds, 3)) s")
    print("  one epoch, \(batches) batches of 128, shuffled, 2-pixel jitter: \(format(epoch, 3)) s (\(format(Double(data.training.count) / epoch, 0)) examples/s)")
    print("  resident memory of the loaded data set: \(residentAfter - residentBefore) MB (process: \(residentAfter) MB)")
}

/// Current resident set size in megabytes (Linux: /proc/self/statm; elsewhere the peak).
func residentMegabytes() -> Int {
    if let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
        let fields = text.split(separator: " ")
        if fields.count > 1, let pages = Int(fields[1]) { return pages * 4096 / (1024 * 1024) }
    }
    return peakResidentMegabytes()
}
