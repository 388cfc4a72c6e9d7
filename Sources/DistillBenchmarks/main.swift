// The benchmark executable behind `make bench`. It prints figures; it asserts nothing.
// Every ratio is taken within this one run (the machines are shared and noisy).
import DistillCore
import DistillKit

let arguments = CommandLine.arguments.dropFirst()
let quick = arguments.contains("--quick")
let only = arguments.first { !$0.hasPrefix("--") }
/// `--case TEXT`: run only the cases whose name contains TEXT.
let caseFilter: String? = arguments.firstIndex(of: "--case").flatMap { i in
    arguments.index(after: i) < arguments.endIndex ? arguments[arguments.index(after: i)] : nil
}

print("Distill benchmarks (\(processorCount) cores)\(quick ? " [quick]" : "")")
print("")
if only == nil || only == "training" { try runTrainingBenchmarks(quick: quick, breakdown: arguments.contains("--breakdown"), filter: caseFilter) }
print("")
print("peak resident memory: \(peakResidentMegabytes()) MB")
