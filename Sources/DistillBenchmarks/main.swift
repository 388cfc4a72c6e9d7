// The benchmark executable behind `make bench`. It prints figures; it asserts nothing.
// Every ratio is taken within this one run (the machines are shared and noisy).
//
// Usage: DistillBenchmarks [data|losses|training] [--quick] [--breakdown] [--case TEXT]
import DistillCore
import DistillKit

let arguments = CommandLine.arguments.dropFirst()
let quick = arguments.contains("--quick")
/// `--case TEXT`: run only the training cases or loss shapes whose name contains TEXT.
let caseFilter: String? = arguments.firstIndex(of: "--case").flatMap { i in
    arguments.index(after: i) < arguments.endIndex ? arguments[arguments.index(after: i)] : nil
}
/// The group to run (data, losses or training); all when absent.
let only = arguments.first { ["data", "losses", "training"].contains($0) }

print("Distill benchmarks (\(processorCount) cores)\(quick ? " [quick]" : "")")
print("")
// Data first, so that the resident-memory figure is the data set's alone.
if only == nil || only == "data" { try runDataBenchmark(quick: quick); print("") }
if only == nil || only == "losses" { try runLossBenchmarks(quick: quick, filter: caseFilter); print("") }
if only == nil || only == "training" {
    try runTrainingBenchmarks(quick: quick, breakdown: arguments.contains("--breakdown"), filter: caseFilter)
    print("")
}
print("peak resident memory: \(peakResidentMegabytes()) MB")
