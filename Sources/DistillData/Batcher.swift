import DistillCore

/// One batch: normalised inputs `[n] + exampleShape`, labels, and the teacher's outputs for the
/// same examples when the batcher carries them. The tensors belong to the batcher and are
/// overwritten by its next batch.
public struct Batch {
    public let inputs: Tensor
    /// One label per row of the model's logits (`Examples.noLabel` for unlabelled examples): `[n]`
    /// for examples, `[n T]` for text windows of T positions; nil when the set has none.
    public let labels: [Int32]?
    /// `[n, C]` teacher outputs, or nil.
    public let teacher: Tensor?
    /// The examples' indices in the set, in batch order.
    public let indices: ArraySlice<Int>
    /// One flag per row of the model's logits, false for padding (a row that counts for nothing
    /// in any loss); nil when every row counts.
    public let mask: [Bool]?
    /// How the rows were mixed (mixup), or nil.
    public let mixing: Mixing?
    public var count: Int { indices.count }

    /// Mixup's record of a batch: row `i` holds `lambda x_i + (1 - lambda) x_partner(i)`.
    public struct Mixing: Sendable {
        public let lambda: Float
        /// The row each row was mixed with.
        public let partners: [Int]
        /// Each row's partner's label (`Examples.noLabel` for none), or nil without labels.
        public let partnerLabels: [Int32]?
    }

    public init(
        inputs: Tensor, labels: [Int32]?, teacher: Tensor?, indices: ArraySlice<Int>,
        mask: [Bool]? = nil, mixing: Mixing? = nil
    ) {
        (self.inputs, self.labels, self.teacher, self.indices) = (inputs, labels, teacher, indices)
        (self.mask, self.mixing) = (mask, mixing)
    }
}

/// What a trainer draws its batches from: epochs of batches, regenerated exactly from the seed,
/// the epoch and the batch index (so that a resumed run sees the same batches).
public protocol BatchSource: AnyObject {
    /// The number of batches in an epoch.
    var batchesPerEpoch: Int { get }
    /// Starts epoch `epoch` (0-based).
    func start(epoch: Int)
    /// The next batch of the epoch, or nil when it is over. Its tensors belong to the source.
    func next() -> Batch?
}

/// Feeds a set of examples to training: a seeded permutation per epoch, batches of normalised
/// floats (the last partial batch is kept), optional augmentation of images (random translation,
/// horizontal flips, cutout, in that order), optional mixup of the batch's rows (last), and
/// per-example teacher outputs shuffled in step with the examples.
///
/// Everything random is derived from `(seed, epoch, batch)`, so an epoch's batches depend only on
/// the seed and can be regenerated after a restart.
public final class Batcher: BatchSource {
    public let examples: Examples
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    /// Maximum translation in pixels (0: none). Images only. The same as a random crop of the
    /// image padded by `jitter` pixels of background on every side.
    public let jitter: Int
    /// Whether each image is mirrored left to right with probability 1/2. Images only.
    public let flip: Bool
    /// The side of the square set to 0 (in the normalised input) at a uniformly drawn centre of
    /// each image, clipped at the borders (DeVries and Taylor's cutout); 0 for none. Images only.
    public let cutout: Int
    /// Mixup (Zhang et al., ICLR 2018): the Beta(a, a) parameter `a` of each batch's weight
    /// `lambda`; 0 for none. Each row becomes `lambda x_i + (1 - lambda) x_j` with `j` drawn by a
    /// seeded permutation of the batch's rows, after the other augmentations; one `lambda` per
    /// batch (`Batch.mixing` records it, the partners and their labels). A batch of one row is left
    /// as it is.
    public let mixup: Float
    /// Per-example teacher outputs, or nil.
    public let teacherRows: TeacherRows?

    private var order: [Int]
    private var unmixed = Tensor(zeros: [0])
    private var position = 0
    private var epoch = 0
    private var batchIndex = 0
    private var inputs: Tensor
    private var teacher: Tensor
    private var labels: [Int32]
    private let byteTable: [Float]

    /// - Throws: `DataError` for a batch size below 1, augmentation of non-image data, or teacher
    ///   outputs whose row count differs from the examples'.
    public init(
        examples: Examples, batchSize: Int, shuffle: Bool = true, seed: UInt64, jitter: Int = 0,
        flip: Bool = false, cutout: Int = 0, mixup: Float = 0, teacherRows: TeacherRows? = nil
    ) throws {
        guard batchSize >= 1 else {
            throw DataError("the batch size must be at least 1, got \(batchSize)")
        }
        guard jitter >= 0 else { throw DataError("the jitter must be >= 0 pixels, got \(jitter)") }
        guard jitter == 0 || examples.isImage else {
            throw DataError("--jitter needs image inputs [C, H, W]")
        }
        guard cutout >= 0 else { throw DataError("the cutout must be >= 0 pixels, got \(cutout)") }
        guard (!flip && cutout == 0) || examples.isImage else {
            throw DataError("--flip and --cutout need image inputs [C, H, W]")
        }
        guard mixup >= 0, mixup.isFinite else {
            throw DataError("the mixup parameter must be >= 0, got \(mixup)")
        }
        guard mixup == 0 || batchSize >= 2 else {
            throw DataError("--mixup mixes the rows of a batch: it needs a batch of at least 2")
        }
        if let teacherRows {
            guard teacherRows.width >= 1, teacherRows.count >= examples.count else {
                throw DataError(
                    "teacher outputs cover \(teacherRows.count) examples of \(teacherRows.width) classes; there are \(examples.count) examples"
                )
            }
            if case .values(let values, let width) = teacherRows,
                values.count != examples.count * width
            {
                throw DataError(
                    "teacher outputs hold \(values.count) values; \(examples.count) examples of \(width) classes need \(examples.count * width)"
                )
            }
        }
        self.examples = examples
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.jitter = jitter
        self.flip = flip
        self.cutout = cutout
        self.mixup = mixup
        self.teacherRows = teacherRows
        order = Array(0..<examples.count)
        inputs = Tensor(zeros: [min(batchSize, examples.count)] + examples.exampleShape)
        teacher = Tensor(zeros: [min(batchSize, examples.count), max(teacherRows?.width ?? 1, 1)])
        labels = [Int32](repeating: 0, count: min(batchSize, examples.count))
        byteTable = examples.byteTable
        start(epoch: 0)
    }

    /// The number of batches in an epoch (the last one may be partial).
    public var batchesPerEpoch: Int { (examples.count + batchSize - 1) / batchSize }

    /// Starts epoch `epoch` (0-based): the permutation is a function of the seed and the epoch.
    public func start(epoch: Int) {
        self.epoch = epoch
        position = 0
        batchIndex = 0
        for i in order.indices { order[i] = i }
        guard shuffle else { return }
        var generator = SeededGenerator(seed: mix(seed, UInt64(epoch), 0x5EED))
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
    }

    /// The next batch of the current epoch, or nil when the epoch is over.
    public func next() -> Batch? {
        guard position < examples.count else { return nil }
        let n = min(batchSize, examples.count - position)
        let indices = order[position..<(position + n)]
        inputs.resize(to: [n] + examples.exampleShape)
        let features = examples.featureCount
        var generator = SeededGenerator(
            seed: mix(seed, UInt64(epoch), UInt64(batchIndex) &+ 0x1_0000_0000))
        for (row, index) in indices.enumerated() {
            let destination = inputs.pointer + row * features
            if jitter > 0 {
                let span = UInt64(2 * jitter + 1)
                let dx = Int(generator.next() % span) - jitter
                let dy = Int(generator.next() % span) - jitter
                translate(example: index, dx: dx, dy: dy, into: destination)
            } else {
                examples.write(example: index, to: destination)
            }
            if flip && generator.next() & 1 == 1 { mirror(destination) }
            if cutout > 0 {
                let shape = examples.exampleShape
                let cy = Int(generator.next() % UInt64(shape[1]))
                let cx = Int(generator.next() % UInt64(shape[2]))
                cut(destination, centre: (cy, cx))
            }
            if let y = examples.labels { labels[row] = y[index] }
        }
        var teacherBatch: Tensor?
        if let rows = teacherRows {
            let width = rows.width
            teacher.resize(to: [n, width])
            for (row, index) in indices.enumerated() {
                rows.copyRow(index, to: teacher.pointer + row * width)
            }
            teacherBatch = teacher
        }
        let mixing = mixup > 0 && n >= 2 ? mixRows(n, generator: &generator) : nil
        position += n
        batchIndex += 1
        return Batch(
            inputs: inputs, labels: examples.labels == nil ? nil : Array(labels[0..<n]),
            teacher: teacherBatch, indices: indices, mixing: mixing)
    }

    /// Mixes the `n` rows of `inputs` in place: `lambda ~ Beta(mixup, mixup)`, partners a seeded
    /// permutation of the rows.
    func mixRows(_ n: Int, generator: inout SeededGenerator) -> Batch.Mixing {
        let lambda = Float(generator.nextBeta(Double(mixup), Double(mixup)))
        var partners = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) {
            partners.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        let features = examples.featureCount
        unmixed.resize(to: [n * features])
        unmixed.pointer.update(from: inputs.pointer, count: n * features)
        for i in 0..<n {
            let (x, a, b) = (
                inputs.pointer + i * features, unmixed.pointer + i * features,
                unmixed.pointer + partners[i] * features
            )
            for k in 0..<features { x[k] = lambda * a[k] + (1 - lambda) * b[k] }
        }
        return Batch.Mixing(
            lambda: lambda, partners: partners,
            partnerLabels: examples.labels == nil ? nil : partners.map { labels[$0] })
    }

    /// Mirrors the image at `image` left to right, every channel: `x -> W - 1 - x`.
    func mirror(_ image: UnsafeMutablePointer<Float>) {
        let shape = examples.exampleShape
        for plane in 0..<(shape[0] * shape[1]) {
            let row = image + plane * shape[2]
            var (a, b) = (0, shape[2] - 1)
            while a < b {
                (row[a], row[b]) = (row[b], row[a])
                (a, b) = (a + 1, b - 1)
            }
        }
    }

    /// Sets the `cutout x cutout` square centred at `centre` (rows `cy - cutout / 2` to
    /// `cy - cutout / 2 + cutout - 1`, columns likewise, clipped to the image) to 0 in every channel.
    func cut(_ image: UnsafeMutablePointer<Float>, centre: (y: Int, x: Int)) {
        let (channels, height, width) = (
            examples.exampleShape[0], examples.exampleShape[1], examples.exampleShape[2]
        )
        let (y0, x0) = (max(0, centre.y - cutout / 2), max(0, centre.x - cutout / 2))
        let (y1, x1) = (
            min(height, centre.y - cutout / 2 + cutout), min(width, centre.x - cutout / 2 + cutout)
        )
        guard y1 > y0, x1 > x0 else { return }
        for c in 0..<channels {
            for y in y0..<y1 {
                (image + (c * height + y) * width + x0).update(repeating: 0, count: x1 - x0)
            }
        }
    }

    /// Writes example `index` shifted by (dx, dy) pixels: `out[c, y, x] = in[c, y - dy, x - dx]`,
    /// with the normalised value of a zero pixel where the source falls outside the image (the
    /// background moves in; nothing wraps around).
    func translate(
        example index: Int, dx: Int, dy: Int, into destination: UnsafeMutablePointer<Float>
    ) {
        let shape = examples.exampleShape
        let (channels, height, width) = (shape[0], shape[1], shape[2])
        let features = examples.featureCount
        let background = examples.normalization.apply(0)
        let x0 = max(0, dx)
        let x1 = min(width, width + dx)  // destination columns with a source
        /// Copies the translated planes from `source`, normalising each value with `value`.
        func shift<T>(_ source: UnsafePointer<T>, _ value: (T) -> Float) {
            for c in 0..<channels {
                for y in 0..<height {
                    let out = destination + (c * height + y) * width
                    let sy = y - dy
                    guard sy >= 0, sy < height, x1 > x0 else {
                        out.update(repeating: background, count: width)
                        continue
                    }
                    let row = source + (c * height + sy) * width
                    out.update(repeating: background, count: x0)
                    for x in x0..<x1 { out[x] = value(row[x - dx]) }
                    (out + x1).update(repeating: background, count: width - x1)
                }
            }
        }
        switch examples.inputs {
        case .bytes(let bytes):
            bytes.withUnsafeBufferPointer { all in
                byteTable.withUnsafeBufferPointer { table in
                    shift(all.baseAddress! + index * features) { table[Int($0)] }
                }
            }
        case .floats(let values):
            let normalization = examples.normalization
            values.withUnsafeBufferPointer { all in
                shift(all.baseAddress! + index * features) { normalization.apply($0) }
            }
        }
    }
}

/// A well-mixed 64-bit seed from three values (SplitMix64 finaliser over their combination).
func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
    var z = a &+ 0x9E37_79B9_7F4A_7C15 &* (b &+ 1) &+ 0xBF58_476D_1CE4_E5B9 &* (c &+ 1)
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
