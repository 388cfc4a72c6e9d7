import DistillCore
import DistillFormats

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A dataset on disk: a training and a test set.
public struct Dataset: Sendable {
    public let directory: String
    public let training: Examples
    public let test: Examples
    /// Class names when known (Fashion-MNIST), else nil.
    public let classNames: [String]?
}

/// Finding and loading a data directory.
///
/// Two layouts are recognised:
/// - MNIST: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
///   `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]` (unsigned-byte images
///   `[N, H, W]`, labels `[N]`; pixels are scaled to [0, 1]);
/// - NPY: `train_x.npy`, `train_y.npy`, `test_x.npy`, `test_y.npy` (x as float32 features
///   `[N, D]` or uint8 images `[N, H, W]`, y integer labels `[N]`). Without `train_y.npy` the
///   training set is unlabelled (for soft-only distillation; the class count then comes from
///   `test_y.npy`).
public enum DataDirectory {
    /// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
    public static let systemFashionMNIST = "/usr/share/datasets/fashion-mnist"

    /// The directory to use: `explicit` (from `--data`) if given, else `$DISTILL_DATA`, else the
    /// system Fashion-MNIST directory.
    /// - Throws: `DataError` saying where it looked and how to get Fashion-MNIST (or, with text,
    ///   what a text directory holds).
    public static func resolve(_ explicit: String?, environment: [String: String]) throws -> String
    {
        if let explicit {
            guard holdsDataset(explicit) else {
                if TextDataset.holdsText(explicit) { throw DataError(textInstead(explicit)) }
                if TaggingDataset.holdsCoNLL(explicit) {
                    throw DataError(
                        "\(explicit) holds tagged sentences (train.conll), for taggers; this command takes examples (the MNIST or NPY layout)"
                    )
                }
                throw DataError(
                    "\(explicit): no dataset here (expected the MNIST layout, train-images-idx3-ubyte[.gz] and friends; train_x.npy, train_y.npy, test_x.npy, test_y.npy; text: train.txt, test.txt; or tagged sentences: train.conll, test.conll)"
                )
            }
            return explicit
        }
        if let fromEnvironment = environment["DISTILL_DATA"], !fromEnvironment.isEmpty {
            guard holdsDataset(fromEnvironment) else {
                if TextDataset.holdsText(fromEnvironment) {
                    throw DataError(textInstead(fromEnvironment))
                }
                throw DataError(
                    "\(fromEnvironment) (from $DISTILL_DATA): no dataset here (expected the MNIST or NPY layout)"
                )
            }
            return fromEnvironment
        }
        guard holdsDataset(systemFashionMNIST) else {
            throw DataError(
                "no dataset found: pass --data DIR or set $DISTILL_DATA, or install Fashion-MNIST into \(systemFashionMNIST) with `sudo apt-get install dataset-fashion-mnist`"
            )
        }
        return systemFashionMNIST
    }

    /// Loads the directory `resolve(explicit, environment:)` finds (see `load(_:classes:)`).
    public static func load(
        resolving explicit: String?, environment: [String: String], classes: Int? = nil
    ) throws -> Dataset {
        try load(resolve(explicit, environment: environment), classes: classes)
    }

    /// Why a command that takes examples refuses a directory of text.
    static func textInstead(_ directory: String) -> String {
        "\(directory) holds text (train.txt), for language models; this command takes examples (the MNIST or NPY layout)"
    }

    /// Like `resolve`, but also accepts a directory of text (`train.txt`, for language models) or
    /// of tagged sentences (`train.conll`, for taggers).
    public static func resolveAny(_ explicit: String?, environment: [String: String]) throws
        -> String
    {
        for candidate in [explicit, environment["DISTILL_DATA"]].compactMap({ $0 })
        where !candidate.isEmpty {
            if TextDataset.holdsText(candidate) || TaggingDataset.holdsCoNLL(candidate) {
                return candidate
            }
            break
        }
        return try resolve(explicit, environment: environment)
    }

    /// Whether `directory` holds the MNIST or the NPY layout.
    public static func holdsDataset(_ directory: String) -> Bool {
        mnistFile(directory, "train-images-idx3-ubyte") != nil || exists(directory + "/train_x.npy")
    }

    /// Loads the training and test sets of `directory`.
    /// - Parameter classes: the class count (`--classes`, or a teacher's); every label must lie in
    ///   `0..<classes`. When nil, 10 for the MNIST layout, and for the NPY layout `max(label) + 1`,
    ///   refused when that is more than 16 and more than twice the number of distinct labels (one
    ///   stray label of 1,000,000 among 0 to 9 would otherwise make a million-class output layer).
    /// - Throws: `FileError` for a bad file, `DataError` for inconsistent files (counts, shapes,
    ///   labels out of range); both name the file, and a bad label its row and value.
    public static func load(_ directory: String, classes: Int? = nil) throws -> Dataset {
        if mnistFile(directory, "train-images-idx3-ubyte") != nil {
            let training = try loadMNIST(directory, prefix: "train", classes: classes ?? 10)
            let test = try loadMNIST(directory, prefix: "t10k", classes: classes ?? 10)
            let fashion = directory.lowercased().contains("fashion") && training.classes == 10
            return Dataset(
                directory: directory, training: training, test: test,
                classNames: fashion ? fashionMNISTClassNames : nil)
        }
        guard exists(directory + "/train_x.npy") else {
            throw DataError("\(directory): no dataset here (expected the MNIST or NPY layout)")
        }
        let trainY =
            exists(directory + "/train_y.npy") ? try NPY.read(directory + "/train_y.npy") : nil
        let testY = try NPY.read(directory + "/test_y.npy")
        for y in [trainY, testY].compactMap({ $0 }) where y.shape.count != 1 {
            throw FileError(y.path, "expected labels [N], got shape \(y.shape)")
        }
        let trainLabels = try trainY.map { (path: $0.path, values: try $0.integers()) }
        let testLabels = (path: testY.path, values: try testY.integers())
        let inferred =
            try classes ?? inferredClassCount([trainLabels, testLabels].compactMap { $0 })
        let training = try loadNPY(
            directory, prefix: "train", labels: trainLabels, classes: inferred)
        let test = try loadNPY(directory, prefix: "test", labels: testLabels, classes: inferred)
        guard training.exampleShape == test.exampleShape else {
            throw DataError(
                "\(directory): training examples have shape \(training.exampleShape) but test examples \(test.exampleShape)"
            )
        }
        return Dataset(directory: directory, training: training, test: test, classNames: nil)
    }

    static func mnistFile(_ directory: String, _ name: String) -> String? {
        for candidate in [directory + "/" + name, directory + "/" + name + ".gz"]
        where exists(candidate) {
            return candidate
        }
        return nil
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    private static func loadMNIST(_ directory: String, prefix: String, classes: Int) throws
        -> Examples
    {
        guard let imagesPath = mnistFile(directory, "\(prefix)-images-idx3-ubyte"),
            let labelsPath = mnistFile(directory, "\(prefix)-labels-idx1-ubyte")
        else {
            throw DataError(
                "\(directory): missing \(prefix)-images-idx3-ubyte[.gz] or \(prefix)-labels-idx1-ubyte[.gz]"
            )
        }
        let images = try IDX.read(imagesPath)
        let labels = try IDX.read(labelsPath)
        guard images.shape.count == 3 else {
            throw FileError(
                imagesPath, "expected images [N, height, width], got shape \(images.shape)")
        }
        guard labels.shape.count == 1 else {
            throw FileError(labelsPath, "expected labels [N], got shape \(labels.shape)")
        }
        guard images.shape[0] == labels.shape[0] else {
            throw DataError(
                "\(imagesPath) has \(images.shape[0]) images but \(labelsPath) has \(labels.shape[0]) labels"
            )
        }
        let y = try checkedLabels(
            labels.bytes.map { Int64($0) }, classes: classes, path: labelsPath)
        return Examples(
            inputs: .bytes(images.bytes), exampleShape: [1, images.shape[1], images.shape[2]],
            labels: y, classes: classes, normalization: .bytesToUnit)
    }

    private static func loadNPY(
        _ directory: String, prefix: String, labels: (path: String, values: [Int64])?,
        classes: Int
    ) throws -> Examples {
        let xPath = directory + "/\(prefix)_x.npy"
        let x = try NPY.read(xPath)
        var y: [Int32]?
        if let labels {
            guard x.shape.first == labels.values.count else {
                throw DataError(
                    "\(xPath) has \(x.shape.first ?? 0) examples but \(labels.path) has \(labels.values.count) labels"
                )
            }
            y = try checkedLabels(labels.values, classes: classes, path: labels.path)
        }
        if let bytes = x.uint8Values {
            guard x.shape.count == 3 else {
                throw FileError(
                    xPath, "uint8 inputs must be images [N, H, W], got shape \(x.shape)")
            }
            return Examples(
                inputs: .bytes(bytes), exampleShape: [1, x.shape[1], x.shape[2]], labels: y,
                classes: classes, normalization: .bytesToUnit)
        }
        guard x.shape.count == 2, x.type == .float32 || x.type == .float64 else {
            throw FileError(
                xPath,
                "inputs must be float32 features [N, D] or uint8 images [N, H, W], got \(x.type) \(x.shape)"
            )
        }
        let values = x.floats()
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw FileError(
                xPath,
                "value \(values[bad]) at example \(bad / x.shape[1]), feature \(bad % x.shape[1]) is not finite"
            )
        }
        return Examples(
            inputs: .floats(values), exampleShape: [x.shape[1]], labels: y, classes: classes,
            normalization: .identity)
    }

    /// `max(label) + 1` over the label files, provided it is at most 16 or at least half of those
    /// classes occur.
    /// - Throws: `FileError` naming the file, row and value of the largest label when the class
    ///   count it implies is more than 16 and more than twice the number of distinct labels, or
    ///   naming a negative label.
    static func inferredClassCount(_ files: [(path: String, values: [Int64])]) throws -> Int {
        var distinct = Set<Int64>()
        var largest: (path: String, row: Int, value: Int64)?
        for file in files {
            if let bad = file.values.firstIndex(where: { $0 < 0 }) {
                throw FileError(file.path, "label \(file.values[bad]) at row \(bad) is negative")
            }
            for (row, value) in file.values.enumerated() {
                distinct.insert(value)
                if value > largest?.value ?? -1 { largest = (file.path, row, value) }
            }
        }
        guard let largest else { return 1 }
        let implied = UInt64(largest.value) + 1  // no overflow: 0 <= value <= Int64.max
        if implied > max(16, 2 * UInt64(distinct.count)) {
            throw FileError(
                largest.path,
                "label \(largest.value) at row \(largest.row) implies \(implied) classes, but the labels take only \(distinct.count) distinct values; correct the label, or pass --classes N (at least \(implied)) if the data really has classes without examples"
            )
        }
        return Int(implied)
    }

    /// The largest class count a data set may declare (labels are stored as `Int32`).
    public static let maximumClasses = 1 << 24

    private static func checkedLabels(_ values: [Int64], classes: Int, path: String) throws
        -> [Int32]
    {
        guard classes >= 1, classes <= maximumClasses else {
            throw DataError("the class count must be from 1 to \(maximumClasses), got \(classes)")
        }
        if let bad = values.firstIndex(where: { $0 < 0 || $0 >= Int64(classes) }) {
            throw FileError(path, "label \(values[bad]) at row \(bad) is outside [0, \(classes))")
        }
        return values.map { Int32($0) }
    }
}
