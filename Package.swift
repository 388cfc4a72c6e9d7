// swift-tools-version:6.0
// Distill: knowledge distillation on the CPU.
//
// Modules, each with one job (see README "Layout"):
//   CBLAS           module map over OpenBLAS's cblas.h, its thread pool's restart and the
//                   floating-point control word (Linux); Accelerate on Apple platforms
//   CZlib           module map over zlib.h (gzip-compressed IDX files)
//   DistillCore     Tensor, the BLAS wrapper, seeded randomness, parallel loops (and their
//                   floating-point mode), atomic files
//   DistillLosses   softmax with temperature, cross-entropy, KL, the distillation loss
//   DistillFormats  file formats: safetensors, IDX (raw or gzip), NPY
//   DistillData     datasets, validation splits, seeded batches, augmentation
//   DistillNN       layers, optimizers, schedules, models and their checkpoints
//   DistillTraining the training step, trainer, teacher outputs, evaluation metrics, sweeps
//   DistillReport   report.html: inline-SVG charts of a sweep or the demo
//   DistillKit      the umbrella module: `import DistillKit` gives all of the above
import PackageDescription

let package = Package(
    name: "Distill",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "DistillKit", targets: ["DistillKit"]),
        .executable(name: "distill", targets: ["distill"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "DistillCore",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux]))],
            linkerSettings: [
                .linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS, .visionOS]))
            ]
        ),
        .target(name: "DistillLosses", dependencies: ["DistillCore"]),
        .target(name: "DistillFormats", dependencies: ["DistillCore", "CZlib"]),
        .target(name: "DistillData", dependencies: ["DistillCore", "DistillFormats"]),
        .target(name: "DistillNN", dependencies: ["DistillCore", "DistillFormats"]),
        .target(
            name: "DistillTraining",
            dependencies: [
                "DistillCore", "DistillLosses", "DistillFormats", "DistillNN", "DistillData",
            ]),
        .target(
            name: "DistillReport",
            dependencies: [
                "DistillCore", "DistillData", "DistillLosses", "DistillNN", "DistillTraining",
            ]),
        .target(
            name: "DistillKit",
            dependencies: [
                "DistillCore", "DistillLosses", "DistillFormats", "DistillNN", "DistillData",
                "DistillTraining",
                "DistillReport",
            ]
        ),
        .executableTarget(
            name: "distill",
            dependencies: [
                "DistillKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "DistillBenchmarks", dependencies: ["DistillKit"]),
        // Fuzzing: the readers' entry points, and one libFuzzer target per reader (`make fuzz`).
        .target(
            name: "DistillFuzzing", dependencies: ["DistillCore", "DistillFormats", "DistillNN"]),
        .executableTarget(name: "FuzzIDX", dependencies: ["DistillFuzzing"], path: "Fuzz/FuzzIDX"),
        .executableTarget(
            name: "FuzzGzip", dependencies: ["DistillFuzzing"], path: "Fuzz/FuzzGzip"),
        .executableTarget(name: "FuzzNPY", dependencies: ["DistillFuzzing"], path: "Fuzz/FuzzNPY"),
        .executableTarget(
            name: "FuzzSafeTensors", dependencies: ["DistillFuzzing"], path: "Fuzz/FuzzSafeTensors"),
        .executableTarget(
            name: "FuzzArchitecture", dependencies: ["DistillFuzzing"],
            path: "Fuzz/FuzzArchitecture"),
        .target(
            name: "DistillTestSupport", dependencies: ["DistillCore"],
            path: "Tests/DistillTestSupport"),
        .testTarget(name: "DistillCoreTests", dependencies: ["DistillCore", "DistillTestSupport"]),
        .testTarget(
            name: "DistillLossesTests", dependencies: ["DistillLosses", "DistillTestSupport"]),
        .testTarget(
            name: "DistillFormatsTests", dependencies: ["DistillFormats", "DistillTestSupport"]),
        .testTarget(
            name: "DistillNNTests",
            dependencies: ["DistillNN", "DistillFormats", "DistillTestSupport"]),
        .testTarget(
            name: "DistillDataTests",
            dependencies: ["DistillData", "DistillFormats", "DistillTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "DistillCLITests",
            dependencies: [
                "distill", "DistillKit", "DistillTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(
            name: "DistillFuzzingTests", dependencies: ["DistillFuzzing", "DistillTestSupport"],
            resources: [.copy("Corpus")]),
        .testTarget(
            name: "DistillReportTests",
            dependencies: ["DistillReport", "DistillTraining", "DistillTestSupport"]),
        .testTarget(
            name: "DistillTrainingTests",
            dependencies: [
                "DistillTraining", "DistillData", "DistillFormats", "DistillLosses",
                "DistillTestSupport",
            ],
            resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
