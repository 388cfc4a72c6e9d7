import DistillCore
import DistillFormats
import DistillTestSupport
import XCTest

@testable import DistillNN

final class CheckpointTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory("distill-ckpt")
    }

    func makeCNN() throws -> Model {
        var generator = SeededGenerator(seed: 5)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "cnn:4,6/fc:8"), inputShape: [1, 12, 10], classes: 3,
            dropout: 0.3, inputDropout: 0.1, normalization: .bytesToUnit, generator: &generator)
        model.metadata["seed"] = "5"
        return model
    }

    /// Save then load gives the same parameters bit for bit, the same metadata, the same
    /// inference logits, and re-saving gives the same file.
    func testRoundTripIsBitExact() throws {
        let model = try makeCNN()
        let path = dir + "/model.safetensors"
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        XCTAssertEqual(loaded.network.descriptor, model.network.descriptor)
        XCTAssertEqual(loaded.inputShape, [1, 12, 10])
        XCTAssertEqual(loaded.classes, 3)
        XCTAssertEqual(loaded.normalization, .bytesToUnit)
        XCTAssertEqual(loaded.architecture, "cnn:4,6/fc:8")
        XCTAssertEqual(loaded.metadata, ["seed": "5"])
        for (a, b) in zip(model.network.namedParameters, loaded.network.namedParameters) {
            XCTAssertEqual(a.name, b.name)
            XCTAssertEqual(
                a.parameter.value.values.map(\.bitPattern),
                b.parameter.value.values.map(\.bitPattern))
        }
        let x = Tensor(shape: [2, 1, 12, 10], values: fixtureValues(240, seed: 3))
        XCTAssertEqual(model.logits(x).values, loaded.logits(x).values)
        try loaded.save(to: dir + "/again.safetensors")
        XCTAssertEqual(try readFileBytes(dir + "/again.safetensors"), try readFileBytes(path))
        // PyTorch-style names, Sequential indices counting parameter-free layers.
        XCTAssertEqual(
            try SafeTensors.read(path).entries.map(\.name),
            [
                "layers.1.weight", "layers.1.bias", "layers.4.weight", "layers.4.bias",
                "layers.9.weight", "layers.9.bias", "layers.11.weight", "layers.11.bias",
            ])
    }

    /// Truncated files, at every cut point, and files whose tensors do not fit the recorded
    /// architecture are refused with the file named; nothing crashes.
    func testRejectsTruncatedAndInconsistentFiles() throws {
        let model = try makeCNN()
        let path = dir + "/model.safetensors"
        try model.save(to: path)
        let bytes = try readFileBytes(path)
        let cuts =
            Array(0..<64) + Array(stride(from: 64, to: bytes.count, by: 97)) + [bytes.count - 1]
        for cut in cuts {
            let bad = dir + "/cut.safetensors"
            try AtomicFile.write(Array(bytes[0..<cut]), to: bad)
            XCTAssertThrowsError(try Model.load(from: bad), "cut at \(cut)") {
                XCTAssertTrue("\($0)".hasPrefix(bad + ": "), "\($0)")
            }
        }
        // Tensors that disagree with the metadata.
        func write(_ tensors: [SafeTensors.Input], _ meta: [String: String]) throws -> String {
            let p = dir + "/custom.safetensors"
            try SafeTensors.write(tensors, metadata: meta, to: p)
            return p
        }
        let meta = [
            "format": Model.checkpointFormat, "layers": "linear:3:2", "input_shape": "3",
            "classes": "2",
            "normalization": "divisor=1.0,mean=0.0,std=1.0", "architecture": "mlp",
        ]
        let w = Tensor(zeros: [2, 3])
        let b = Tensor(zeros: [2])
        XCTAssertNoThrow(
            try Model.load(
                from: try write(
                    [
                        .init(name: "layers.0.weight", shape: [2, 3], values: w),
                        .init(name: "layers.0.bias", shape: [2], values: b),
                    ], meta)))
        let problems: [([SafeTensors.Input], [String: String], String)] = [
            (
                [.init(name: "layers.0.weight", shape: [2, 3], values: w)], meta,
                "missing tensor layers.0.bias"
            ),
            (
                [
                    .init(name: "layers.0.weight", shape: [3, 2], values: w),
                    .init(name: "layers.0.bias", shape: [2], values: b),
                ], meta, "has shape [3, 2]"
            ),
            (
                [
                    .init(name: "layers.0.weight", shape: [2, 3], values: w),
                    .init(name: "layers.0.bias", shape: [2], values: b),
                    .init(name: "layers.7.weight", shape: [2], values: b),
                ], meta, "unexpected tensor layers.7.weight"
            ),
            ([], meta.merging(["format": "other"]) { $1 }, "not a Distill model"),
            ([], meta.merging(["layers": "linear:3:2 warp"]) { $1 }, "unknown layer 'warp'"),
            ([], meta.merging(["classes": "7"]) { $1 }, "expected [7] classes"),
            // Refused before the layers are built: 2^48 + 2^24 weights.
            (
                [], meta.merging(["layers": "linear:16777216:16777216"]) { $1 },
                "the recorded layers need 1.1 PB for 281474993487872 weights, more than this machine's"
            ),
            ([], meta.merging(["input_shape": "0"]) { $1 }, "malformed input_shape"),
            ([], meta.merging(["normalization": "divisor=1"]) { $1 }, "incomplete or malformed"),
        ]
        for (tensors, m, expected) in problems {
            let p = try write(tensors, m)
            XCTAssertThrowsError(try Model.load(from: p), expected) {
                XCTAssertTrue("\($0)".contains(expected), "'\($0)' should mention '\(expected)'")
                XCTAssertTrue("\($0)".hasPrefix(p), "\($0)")
            }
        }
        XCTAssertThrowsError(try Model.load(from: dir + "/nope.safetensors")) {
            XCTAssertTrue("\($0)".contains("nope.safetensors: cannot open"), "\($0)")
        }
    }

    /// The footprint counts a spec's parameters exactly without building it (what the memory
    /// checks rely on), and a layer descriptor's count matches its layer's.
    func testFootprintCountsTheParametersOfTheBuiltNetwork() throws {
        for (text, shape) in [
            ("mlp", [784]), ("mlp:30,7", [1, 5, 4]), ("cnn:3,5/fc:6", [1, 9, 7]),
            ("cnn:4,2", [2, 8, 8]),
        ] {
            let spec = try ArchitectureSpec(parsing: text)
            var generator = SeededGenerator(seed: 1)
            let model = try Model(
                spec: spec, inputShape: shape, classes: 11, dropout: 0.5, generator: &generator)
            XCTAssertEqual(
                spec.footprint(inputShape: shape, classes: 11).parameters,
                Double(model.parameterCount), text)
            let fromDescriptors = try model.network.layers.reduce(0.0) {
                $0 + (try LayerDescriptor.parameterCount($1.descriptor))
            }
            XCTAssertEqual(fromDescriptors, Double(model.parameterCount), text)
        }
        let large = try ArchitectureSpec(parsing: "mlp:200000,200000").footprint(
            inputShape: [784], classes: 10)
        let expected: Double = 784 * 200_000 + 200_000 + 200_000 * 200_000 + 200_000 + 2_000_010
        XCTAssertEqual(large.parameters, expected)
    }

    func testArchitectureSpecGrammar() throws {
        XCTAssertEqual(try ArchitectureSpec(parsing: "mlp:1200,1200").hiddenSizes, [1200, 1200])
        XCTAssertEqual(try ArchitectureSpec(parsing: "mlp").hiddenSizes, [])
        let cnn = try ArchitectureSpec(parsing: "cnn:32,64/fc:256")
        XCTAssertEqual(cnn.convolutionChannels, [32, 64])
        XCTAssertEqual(cnn.hiddenSizes, [256])
        XCTAssertEqual(cnn.description, "cnn:32,64/fc:256")
        for bad in [
            "", "mlp:", "mlp:0", "mlp:12,,3", "mlp:-4", "cnn", "cnn:32/fc", "cnn:32/fc:",
            "cnn:32/xx:4", "rnn:3", "mlp:99999999",
        ] {
            XCTAssertThrowsError(try ArchitectureSpec(parsing: bad), bad) {
                XCTAssertTrue(
                    "\($0)".contains("mlp:1200,1200"),
                    "error for '\(bad)' should show the grammar: \($0)")
            }
        }
        var generator = SeededGenerator(seed: 1)
        XCTAssertThrowsError(
            try Model(spec: cnn, inputShape: [784], classes: 10, generator: &generator))
        XCTAssertThrowsError(
            try Model(
                spec: ArchitectureSpec(parsing: "cnn:4,4,4,4,4,4"), inputShape: [1, 28, 28],
                classes: 10, generator: &generator))
        let hinton = try Model(
            spec: ArchitectureSpec(parsing: "mlp:1200,1200"), inputShape: [1, 28, 28], classes: 10,
            dropout: 0.5, inputDropout: 0.2, generator: &generator)
        XCTAssertEqual(
            hinton.network.descriptor,
            "dropout:0.2 linear:784:1200 relu dropout:0.5 linear:1200:1200 relu dropout:0.5 linear:1200:10"
        )
        XCTAssertEqual(
            hinton.parameterCount, 784 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 10 + 10)
    }
}
