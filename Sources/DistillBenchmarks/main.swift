// The benchmark executable behind `make bench`. It prints figures; it asserts nothing.
// Every ratio is taken within this one run (the machines are shared and noisy).
//
// Usage: `DistillBenchmarks --help` (an unknown argument stops it before anything runs).
import DistillCore
import DistillKit
import Foundation

let usage = """
    usage: DistillBenchmarks [data|losses|training|transformer|gemm] [--quick] [--breakdown] [--unfold-columns] [--parts N] [--case TEXT]
           DistillBenchmarks transformer --serve --case TEXT [--parts N]
      data|losses|training|transformer  run one group (these four when absent)
      gemm                  our GEMM kernel against OpenBLAS at the transformer's shapes (only
                            when asked for)
      --quick               fewer rounds
      --breakdown           also time each layer of a training or transformer case beside its
                            own GEMMs (and the parts of a transformer's first block)
      --unfold-columns      convolutions unfold their columns again in the backward pass instead
                            of keeping them (the alternative BENCHMARKS.md compares)
      --parts N             split each training step's batch into N parts, one per core
                            (TrainingStep's parts; default: one per core for transformers, else 1)
      --case TEXT           only the training cases or loss shapes whose name contains TEXT
      --serve               build the one transformer case --case names, print `ready`, then for
                            each line of standard input holding a number N run N training steps
                            and print the seconds per step (scripts/bench-paired drives it)
    """
/// The groups of benchmarks, in the order they run (`gemm` only when asked for).
let groups = ["data", "losses", "training", "transformer", "gemm"]
BLASKernel.useBestSettings()
FloatingPointMode.flushSubnormalsToZero()
let arguments = CommandLine.arguments.dropFirst()
// Check every argument before running anything: a mistyped one must not start a long run.
do {
    var rest = arguments[...]
    while let argument = rest.popFirst() {
        switch argument {
        case "-h", "--help":
            print(usage)
            exit(0)
        case _ where groups.contains(argument):
            continue
        case "--quick", "--breakdown", "--unfold-columns", "--serve":
            continue
        case "--case" where rest.first != nil:
            _ = rest.popFirst()
        case "--parts" where rest.first.flatMap { Int($0) }.map { $0 >= 1 } == true:
            _ = rest.popFirst()
        default:
            let problem =
                argument == "--case"
                ? "--case needs a TEXT"
                : argument == "--parts"
                    ? "--parts needs a whole number of at least 1"
                    : "unknown argument '\(argument)'"
            FileHandle.standardError.write(Data("DistillBenchmarks: \(problem)\n\(usage)\n".utf8))
            exit(2)
        }
    }
}
let quick = arguments.contains("--quick")
/// `--case TEXT`: run only the training cases or loss shapes whose name contains TEXT.
let caseFilter: String? = arguments.firstIndex(of: "--case").flatMap { i in
    arguments.index(after: i) < arguments.endIndex ? arguments[arguments.index(after: i)] : nil
}
/// `--parts N`: the parts a training step splits its batch into; `TrainingStep`'s default when
/// absent.
let parts: Int? = arguments.firstIndex(of: "--parts").flatMap {
    Int(arguments[arguments.index(after: $0)])
}
/// The group to run; the first four of `groups` when absent.
let only = arguments.first { groups.contains($0) }
if arguments.contains("--serve") {
    guard only == "transformer" else {
        FileHandle.standardError.write(
            Data("DistillBenchmarks: --serve is for the transformer group\n\(usage)\n".utf8))
        exit(2)
    }
    try serveTransformerSteps(parts: parts, filter: caseFilter)
    exit(0)
}

print(
    "Distill benchmarks (\(processorCount) cores, BLAS kernel \(BLASKernel.current))\(quick ? " [quick]" : "")"
)
print("")
// Data first, so that the resident-memory figure is the data set's alone.
if only == nil || only == "data" {
    try runDataBenchmark(quick: quick)
    print("")
}
if only == nil || only == "losses" {
    try runLossBenchmarks(quick: quick, filter: caseFilter)
    print("")
}
if only == nil || only == "training" {
    try runTrainingBenchmarks(
        quick: quick, breakdown: arguments.contains("--breakdown"),
        unfoldColumns: arguments.contains("--unfold-columns"), parts: parts, filter: caseFilter)
    print("")
    try runDistillationPathBenchmarks(quick: quick, filter: caseFilter)
    print("")
}
if only == nil || only == "transformer" {
    try runTransformerBenchmarks(
        quick: quick, breakdown: arguments.contains("--breakdown"), parts: parts,
        filter: caseFilter)
    print("")
}
if only == "gemm" {
    runGemmKernelBenchmarks(quick: quick)
    print("")
}
print("peak resident memory: \(peakResidentMegabytes()) MB")
