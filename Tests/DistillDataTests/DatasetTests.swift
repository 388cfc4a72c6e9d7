import DistillCore
import DistillFormats
import DistillTestSupport
import XCTest

@testable import DistillData

final class DatasetTests: XCTestCase {
    func testLoadsTheMNISTLayoutFromGzip() throws {
        let data = try DataDirectory.load(fixtures + "/mnist")
        XCTAssertEqual(data.training.count, 6)
        XCTAssertEqual(data.test.count, 4)
        XCTAssertEqual(data.training.exampleShape, [1, 5, 4])
        XCTAssertEqual(data.training.classes, 10)
        XCTAssertEqual(
            data.training.labels?.map(Int64.init),
            try NPY.read(fixtures + "/mnist/train_expected_labels.npy").integers())
        XCTAssertNil(data.classNames)
        // Pixels scaled to [0, 1] as they are written into a batch.
        let images = try NPY.read(fixtures + "/mnist/train_expected_images.npy").integers()
        var row = [Float](repeating: 0, count: 20)
        row.withUnsafeMutableBufferPointer { data.training.write(example: 1, to: $0.baseAddress!) }
        XCTAssertEqual(row, images[20..<40].map { Float($0) / 255 })
    }

    func testLoadsTheNPYLayoutAndChecksConsistency() throws {
        let dir = try makeTemporaryDirectory("distill-data")
        try NPY.write(floats: fixtureValues(12, seed: 1), shape: [4, 3], to: dir + "/train_x.npy")
        try NPY.write(int64: [0, 2, 1, 2], shape: [4], to: dir + "/train_y.npy")
        try NPY.write(floats: fixtureValues(6, seed: 2), shape: [2, 3], to: dir + "/test_x.npy")
        try NPY.write(int64: [1, 0], shape: [2], to: dir + "/test_y.npy")
        let data = try DataDirectory.load(dir)
        XCTAssertEqual(data.training.exampleShape, [3])
        XCTAssertEqual(data.training.classes, 3)  // max label + 1
        XCTAssertEqual(data.test.labels, [1, 0])
        // Declared class count smaller than the labels: refused, naming the file.
        XCTAssertThrowsError(try DataDirectory.load(dir, classes: 2)) {
            XCTAssertTrue(
                "\($0)".contains("train_y.npy: label 2 at row 1 is outside [0, 2)"), "\($0)")
        }
        // Mismatched counts.
        try NPY.write(int64: [0, 1, 1], shape: [3], to: dir + "/train_y.npy")
        XCTAssertThrowsError(try DataDirectory.load(dir)) {
            XCTAssertTrue("\($0)".contains("has 4 examples but"), "\($0)")
        }
    }

    func testMismatchedImageAndLabelCounts() throws {
        let dir = try makeTemporaryDirectory("distill-data")
        try IDX.write(
            [UInt8](repeating: 1, count: 3 * 4), shape: [3, 2, 2],
            to: dir + "/train-images-idx3-ubyte")
        try IDX.write([0, 1], shape: [2], to: dir + "/train-labels-idx1-ubyte")
        try IDX.write(
            [UInt8](repeating: 1, count: 4), shape: [1, 2, 2], to: dir + "/t10k-images-idx3-ubyte")
        try IDX.write([12], shape: [1], to: dir + "/t10k-labels-idx1-ubyte")
        XCTAssertThrowsError(try DataDirectory.load(dir)) {
            XCTAssertTrue("\($0)".contains("has 3 images but"), "\($0)")
        }
        try IDX.write([0, 1, 1], shape: [3], to: dir + "/train-labels-idx1-ubyte")
        XCTAssertThrowsError(try DataDirectory.load(dir)) {
            XCTAssertTrue(
                "\($0)".contains("t10k-labels-idx1-ubyte: label 12 at row 0 is outside [0, 10)"),
                "\($0)")
        }
    }

    func testResolvesTheDataDirectory() throws {
        XCTAssertEqual(
            try DataDirectory.resolve(fixtures + "/mnist", environment: [:]), fixtures + "/mnist")
        XCTAssertEqual(
            try DataDirectory.resolve(nil, environment: ["DISTILL_DATA": fixtures + "/mnist"]),
            fixtures + "/mnist")
        XCTAssertThrowsError(try DataDirectory.resolve("/nonexistent", environment: [:])) {
            XCTAssertTrue("\($0)".hasPrefix("/nonexistent: no dataset here"), "\($0)")
        }
        if !DataDirectory.holdsDataset(DataDirectory.systemFashionMNIST) {
            XCTAssertThrowsError(try DataDirectory.resolve(nil, environment: [:])) {
                XCTAssertTrue("\($0)".contains("apt-get install dataset-fashion-mnist"), "\($0)")
            }
        }
    }

    func testValidationSplitFromTheEnd() throws {
        XCTAssertEqual(ValidationSplit.automatic.size(forTrainingCount: 60_000), 5_000)
        XCTAssertEqual(ValidationSplit.automatic.size(forTrainingCount: 2_000), 200)
        XCTAssertEqual(ValidationSplit("0.25")?.size(forTrainingCount: 100), 25)
        XCTAssertEqual(ValidationSplit("300"), .count(300))
        XCTAssertNil(ValidationSplit("1.5"))
        XCTAssertNil(ValidationSplit("-3"))
        let examples = Examples(
            inputs: .floats((0..<20).map(Float.init)), exampleShape: [2],
            labels: (0..<10).map { Int32($0 % 3) },
            classes: 3, normalization: .identity)
        let (training, validation) = try examples.splittingValidation(.count(3))
        XCTAssertEqual(training.count, 7)
        XCTAssertEqual(validation.labels, [1, 2, 0])  // examples 7, 8, 9
        XCTAssertThrowsError(try examples.splittingValidation(.count(10)))
    }
}

final class BatcherTests: XCTestCase {
    func examples(_ n: Int) -> Examples {
        Examples(
            inputs: .floats((0..<n).map(Float.init)), exampleShape: [1],
            labels: (0..<n).map { Int32($0 % 4) },
            classes: 4, normalization: .identity)
    }

    func epochIndices(_ batcher: Batcher, _ epoch: Int) -> [[Int]] {
        batcher.start(epoch: epoch)
        var batches: [[Int]] = []
        while let b = batcher.next() { batches.append(Array(b.indices)) }
        return batches
    }

    /// Every epoch is a permutation that depends only on (seed, epoch); the last partial batch
    /// is kept; inputs, labels and teacher rows travel together.
    func testShufflingIsASeededPermutation() throws {
        let set = examples(103)
        let teacher = (0..<(103 * 2)).map { Float($0) }
        let a = try Batcher(
            examples: set, batchSize: 10, seed: 7, teacherRows: .values(teacher, width: 2))
        let b = try Batcher(examples: set, batchSize: 10, seed: 7)
        let c = try Batcher(examples: set, batchSize: 10, seed: 8)
        let e0 = epochIndices(a, 0)
        XCTAssertEqual(e0.count, 11)
        XCTAssertEqual(e0.last?.count, 3)
        XCTAssertEqual(e0.flatMap { $0 }.sorted(), Array(0..<103))
        XCTAssertNotEqual(e0.flatMap { $0 }, Array(0..<103))
        XCTAssertEqual(epochIndices(b, 0), e0)  // same seed, same order
        XCTAssertNotEqual(epochIndices(a, 1), e0)  // another epoch, another order
        XCTAssertNotEqual(epochIndices(c, 0), e0)  // another seed, another order
        XCTAssertEqual(epochIndices(a, 0), e0)  // regenerated after a "restart"
        a.start(epoch: 3)
        while let batch = a.next() {
            for (row, index) in batch.indices.enumerated() {
                XCTAssertEqual(batch.inputs[row], Float(index))
                XCTAssertEqual(batch.labels?[row], Int32(index % 4))
                XCTAssertEqual(batch.teacher?[2 * row], Float(2 * index))
                XCTAssertEqual(batch.teacher?[2 * row + 1], Float(2 * index + 1))
            }
        }
        XCTAssertEqual(
            epochIndices(try Batcher(examples: set, batchSize: 10, shuffle: false, seed: 7), 0)
                .flatMap { $0 }, Array(0..<103))
        XCTAssertThrowsError(try Batcher(examples: set, batchSize: 0, seed: 1))
        XCTAssertThrowsError(
            try Batcher(
                examples: set, batchSize: 4, seed: 1, teacherRows: .values([1, 2], width: 2)))
    }

    /// Translation brings in background (the normalised value of 0), never wraps around, stays
    /// within k pixels, and is reproducible from the seed.
    func testJitterShiftsInBackgroundWithoutWrapping() throws {
        let (h, w) = (6, 7)
        let pixels = (0..<(h * w)).map { UInt8(100 + $0) }  // every pixel distinct and non-zero
        let set = Examples(
            inputs: .bytes(pixels + pixels), exampleShape: [1, h, w], labels: [0, 1], classes: 2,
            normalization: InputNormalization(divisor: 1, mean: 10, std: 2))
        let batcher = try Batcher(examples: set, batchSize: 2, shuffle: false, seed: 3, jitter: 2)
        var seenShifts = Set<[Int]>()
        var first: [Float]?
        for epoch in 0..<30 {
            batcher.start(epoch: epoch)
            let batch = batcher.next()!
            let out = batch.inputs.values
            if epoch == 0 { first = out }
            for example in 0..<2 {
                let image = Array(out[(example * h * w)..<((example + 1) * h * w)])
                // Find the shift that explains the image exactly; background is (0 - 10) / 2 = -5.
                var found: [Int]?
                for dy in -2...2 {
                    for dx in -2...2 {
                        let ok = (0..<h).allSatisfy { y in
                            (0..<w).allSatisfy { x in
                                let (sy, sx) = (y - dy, x - dx)
                                let expected: Float =
                                    (sy >= 0 && sy < h && sx >= 0 && sx < w)
                                    ? (Float(pixels[sy * w + sx]) - 10) / 2 : -5
                                return image[y * w + x] == expected
                            }
                        }
                        if ok { found = [dx, dy] }
                    }
                }
                XCTAssertNotNil(
                    found, "epoch \(epoch): the image is not a translation of at most 2 pixels")
                if let found { seenShifts.insert(found) }
            }
        }
        XCTAssertGreaterThan(seenShifts.count, 10)  // shifts vary
        batcher.start(epoch: 0)
        XCTAssertEqual(batcher.next()!.inputs.values, first)  // reproducible
    }
}

extension DatasetTests {
    /// Flips mirror every channel's rows, about half the time; cutout zeroes one square of its
    /// side (clipped at the borders) and nothing else; both reproducible from the seed and refused
    /// on non-image data.
    func testFlipAndCutoutGeometry() throws {
        let (c, h, w) = (2, 5, 6)
        let pixels = (0..<(c * h * w)).map { UInt8(1 + $0) }  // distinct, none normalises to 0
        let set = Examples(
            inputs: .bytes(pixels), exampleShape: [c, h, w], labels: [0], classes: 1,
            normalization: InputNormalization(divisor: 1, mean: 0, std: 1))
        let original = pixels.map(Float.init)
        let mirrored = (0..<(c * h * w)).map { i in original[i - i % w + (w - 1 - i % w)] }
        let flips = try Batcher(examples: set, batchSize: 1, shuffle: false, seed: 5, flip: true)
        var flipped = 0
        for epoch in 0..<40 {
            flips.start(epoch: epoch)
            let image = flips.next()!.inputs.values
            XCTAssertTrue(image == original || image == mirrored, "epoch \(epoch)")
            if image == mirrored { flipped += 1 }
        }
        XCTAssertTrue((10...30).contains(flipped), "\(flipped) of 40 flipped")
        let cuts = try Batcher(examples: set, batchSize: 1, shuffle: false, seed: 6, cutout: 3)
        var inside = 0
        for epoch in 0..<40 {
            cuts.start(epoch: epoch)
            let image = cuts.next()!.inputs.values
            let zeros = image.indices.filter { image[$0] == 0 }
            for i in image.indices where image[i] != 0 { XCTAssertEqual(image[i], original[i]) }
            // The same square in both channels: rows and columns of channel 0's zeros.
            let plane = zeros.filter { $0 < h * w }
            XCTAssertEqual(Set(plane.map { $0 + h * w }), Set(zeros.filter { $0 >= h * w }))
            let (rows, columns) = (Set(plane.map { $0 / w }), Set(plane.map { $0 % w }))
            XCTAssertEqual(plane.count, rows.count * columns.count)  // a rectangle
            XCTAssertLessThanOrEqual(rows.count, 3)
            XCTAssertLessThanOrEqual(columns.count, 3)
            XCTAssertGreaterThanOrEqual(rows.count, 1)  // the centre is always inside
            if rows.count == 3 && columns.count == 3 { inside += 1 }
        }
        XCTAssertGreaterThan(inside, 0)
        cuts.start(epoch: 3)
        let again = cuts.next()!.inputs.values
        cuts.start(epoch: 3)
        XCTAssertEqual(cuts.next()!.inputs.values, again)
        let flat = Examples(
            inputs: .floats([1, 2]), exampleShape: [2], labels: [0], classes: 1,
            normalization: .identity)
        XCTAssertThrowsError(try Batcher(examples: flat, batchSize: 1, seed: 1, flip: true))
        XCTAssertThrowsError(try Batcher(examples: flat, batchSize: 1, seed: 1, cutout: 2))
    }
}

final class UnlabelledDatasetTests: XCTestCase {
    /// Without train_y.npy the training set has no labels (soft-only distillation).
    func testInferredClassCountRefusesAStrayLabel() throws {
        func count(_ train: [Int64], _ test: [Int64]) throws -> Int {
            try DataDirectory.inferredClassCount([("train_y.npy", train), ("test_y.npy", test)])
        }
        XCTAssertEqual(try count([0, 2, 1], [1]), 3)
        XCTAssertEqual(try count([0, 15], [1]), 16)  // up to 16 classes are taken as they come
        // 21 distinct labels of 40 classes
        XCTAssertEqual(try count(Array(0..<20) + [39], [0]), 40)
        XCTAssertThrowsError(try count(Array(0..<10), [3, 99])) {
            XCTAssertTrue(
                "\($0)".hasPrefix(
                    "test_y.npy: label 99 at row 1 implies 100 classes, but the labels take only 11 distinct values"
                ), "\($0)")
        }
        XCTAssertThrowsError(try count([0, 1, Int64.max], [0])) {  // no overflow
            XCTAssertTrue(
                "\($0)".contains(
                    "label 9223372036854775807 at row 2 implies 9223372036854775808 classes"),
                "\($0)")
        }
        XCTAssertThrowsError(try count([0, -3], [0])) {
            XCTAssertEqual("\($0)", "train_y.npy: label -3 at row 1 is negative")
        }
        XCTAssertEqual(try count([], []), 1)
    }

    func testNPYLayoutWithoutTrainingLabels() throws {
        let dir = try makeTemporaryDirectory("distill-data")
        try NPY.write(floats: fixtureValues(12, seed: 1), shape: [4, 3], to: dir + "/train_x.npy")
        try NPY.write(floats: fixtureValues(6, seed: 2), shape: [2, 3], to: dir + "/test_x.npy")
        try NPY.write(int64: [1, 4], shape: [2], to: dir + "/test_y.npy")
        let data = try DataDirectory.load(dir)
        XCTAssertNil(data.training.labels)
        XCTAssertEqual(data.training.labelledCount, 0)
        XCTAssertEqual(data.training.classes, 5)
        XCTAssertEqual(data.test.labels, [1, 4])
    }
}

extension DatasetTests {
    /// Mixup: every row is lambda x_i + (1 - lambda) x_partner(i) for the batch's recorded lambda
    /// and a permutation of the rows, the partners' labels are recorded, lambda follows
    /// Beta(a, a), and a batch of one row is left as it is.
    func testMixupWeightsAndPartners() throws {
        let (n, d) = (6, 4)
        let values = (0..<(n * d)).map { Float($0 * $0 % 17) }
        let set = Examples(
            inputs: .floats(values), exampleShape: [d], labels: (0..<n).map { Int32($0 % 3) },
            classes: 3, normalization: .identity)
        let mixer = try Batcher(examples: set, batchSize: n, shuffle: false, seed: 9, mixup: 0.4)
        var lambdas: [Float] = []
        for epoch in 0..<200 {
            mixer.start(epoch: epoch)
            let batch = mixer.next()!
            let mixing = try XCTUnwrap(batch.mixing)
            XCTAssertEqual(mixing.partners.sorted(), Array(0..<n))
            XCTAssertEqual(mixing.partnerLabels, mixing.partners.map { Int32($0 % 3) })
            let l = mixing.lambda
            for i in 0..<n {
                for k in 0..<d {
                    XCTAssertEqual(
                        batch.inputs[i * d + k],
                        l * values[i * d + k] + (1 - l) * values[mixing.partners[i] * d + k],
                        accuracy: 1e-4)
                }
            }
            lambdas.append(l)
        }
        // Beta(0.4, 0.4): mean 1/2, variance 0.16 / (0.64 x 1.8) = 0.139, mostly near 0 or 1.
        let mean = lambdas.reduce(0, +) / Float(lambdas.count)
        let variance = lambdas.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(lambdas.count)
        XCTAssertEqual(mean, 0.5, accuracy: 0.06)
        XCTAssertEqual(variance, 0.139, accuracy: 0.03)
        XCTAssertTrue(lambdas.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Reproducible from the seed; a last batch of one row is not mixed; a batch size of 1 is
        // refused.
        mixer.start(epoch: 3)
        let again = mixer.next()!.inputs.values
        mixer.start(epoch: 3)
        XCTAssertEqual(mixer.next()!.inputs.values, again)
        let odd = try Batcher(examples: set, batchSize: 5, shuffle: false, seed: 1, mixup: 1)
        XCTAssertNotNil(odd.next()!.mixing)
        let last = odd.next()!
        XCTAssertNil(last.mixing)
        XCTAssertEqual(last.inputs.values, Array(values[(5 * d)...]))
        XCTAssertThrowsError(try Batcher(examples: set, batchSize: 1, seed: 1, mixup: 1))
        XCTAssertThrowsError(try Batcher(examples: set, batchSize: 4, seed: 1, mixup: -1))
    }

    /// Gamma draws have the shape's mean and variance (below and above 1).
    func testGammaAndBetaDraws() {
        var generator = SeededGenerator(seed: 4)
        for shape in [0.3, 2.5] {
            let draws = (0..<20000).map { _ in generator.nextGamma(shape: shape) }
            let mean = draws.reduce(0, +) / Double(draws.count)
            let variance =
                draws.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(draws.count)
            XCTAssertEqual(mean, shape, accuracy: 0.05 * shape + 0.01)
            XCTAssertEqual(variance, shape, accuracy: 0.1 * shape + 0.01)
        }
        let beta = (0..<20000).map { _ in generator.nextBeta(2, 6) }
        XCTAssertEqual(beta.reduce(0, +) / Double(beta.count), 0.25, accuracy: 0.005)
    }
}
