import DistillCore
import DistillData
import DistillFormats
import DistillLosses
import DistillNN
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a distilled student's soft targets come from.
public enum TeacherSignal {
    /// Logits for the training examples in order: computed once from our own teachers
    /// (`.values`), or read as batches need them from memory-mapped NPY shards
    /// (`--teacher-logits`) or top-k logits (`--teacher-top-k`).
    case rows(TeacherRows)
    /// Teachers run in inference mode on every batch (needed when augmentation changes the
    /// inputs: the teacher sees the same augmented batch as the student).
    case models([Model])

    /// Cached outputs of `teachers` on `examples`, each in inference mode. Several teachers form an
    /// ensemble: the cache holds `T log(mean_m softmax(t_m / T))`, logits whose softmax at T is
    /// exactly the mean of the members' softened distributions.
    /// - Throws: `NonFiniteTeacherOutput` when a teacher's logits on an example are not finite.
    public static func cache(_ teachers: [Model], on examples: Examples, temperature: Float) throws
        -> TeacherSignal
    {
        precondition(!teachers.isEmpty)
        let outputs = try teachers.map { try inferLogits(model: $0, examples: examples) }
        let classes = teachers[0].classes
        for (member, logits) in outputs.enumerated() {
            if let i = logits.firstIndex(where: { !$0.isFinite }) {
                throw NonFiniteTeacherOutput(
                    member: member, example: i / classes, classIndex: i % classes, value: logits[i])
            }
        }
        if outputs.count == 1 { return .rows(.values(outputs[0], width: classes)) }
        return .rows(
            .values(
                try ensembleLogits(outputs, classes: classes, temperature: temperature),
                width: classes))
    }

    /// Teacher logits for the training file from an NPY file or a directory of shards, one row
    /// per training example in file order, memory-mapped; every value is checked to be finite.
    /// - Parameters:
    ///   - trainingFile: the number of examples in the training file (the validation split's
    ///     included: its rows are simply not used).
    /// - Throws: `FileError` naming `path` and the problem.
    public static func logits(
        at path: String, trainingFile: Int, classes: Int, fileName: String = "the training file"
    ) throws -> TeacherSignal {
        let shards = try NPYShards(path)
        guard shards.rows == trainingFile, shards.columns == classes else {
            let over = shards.paths.count > 1 ? " over \(shards.paths.count) shards" : ""
            throw FileError(
                path,
                "teacher logits are [\(shards.rows), \(shards.columns)]\(over); \(fileName) needs [\(trainingFile), \(classes)] (one row per example, in file order)"
            )
        }
        do { return .rows(try .logits(shards)) } catch let error as DataError {
            throw FileError(path, "\(error)")
        }
    }

    /// A teacher's top-k classes for the training file: `directory/values.npy` `[N, k]` (float:
    /// log-probabilities for the rest bucket, any logits to renormalise; see `TopKMass`) and
    /// `directory/indices.npy` `[N, k]` (int), or `directory/values/` and `directory/indices/` of
    /// shards; every row is checked (finite values, k distinct classes in range, and for the rest
    /// bucket probabilities summing to at most 1).
    /// - Throws: `FileError` naming the directory or file and the problem.
    public static func topK(
        at directory: String, trainingFile: Int, classes: Int, mass: TopKMass = .rest
    ) throws -> TeacherSignal {
        func open(_ name: String, integers: Bool) throws -> NPYShards {
            let file = directory + "/" + name + ".npy"
            return try NPYShards(
                FileManager.default.fileExists(atPath: file) ? file : directory + "/" + name,
                integers: integers)
        }
        let (values, indices) = (
            try open("values", integers: false), try open("indices", integers: true)
        )
        guard values.rows == trainingFile else {
            throw FileError(
                directory,
                "top-k values have \(values.rows) rows; the training file has \(trainingFile) (one row per training example, in file order)"
            )
        }
        do {
            return .rows(try .topK(values: values, indices: indices, classes: classes, mass: mass))
        } catch let
            error as DataError
        {
            throw FileError(directory, "\(error)")
        }
    }

    /// The transfer set without the examples whose *true* label is `k`, labelled or not (the
    /// student can still learn class `k` from the soft targets of other classes), with their
    /// teacher rows.
    /// - Parameter trueLabels: the training file's labels before any were withheld.
    /// - Throws: `TrainingError.invalidOption` when `k` is not a class of the data or the data has
    ///   no labels to tell.
    public func omitting(class k: Int, from examples: Examples, trueLabels: [Int32]?) throws -> (
        Examples, TeacherSignal
    ) {
        guard k >= 0, k < examples.classes, let trueLabels else {
            throw TrainingError.invalidOption(
                "--omit-class \(k) is not a class of this data (0..<\(examples.classes))")
        }
        let keep = (0..<examples.count).filter { trueLabels[$0] != Int32(k) }
        switch self {
        case .rows(let rows): return (examples.selecting(keep), .rows(rows.selecting(keep)))
        case .models: return (examples.selecting(keep), self)
        }
    }

    /// Teachers that will run on every batch, checked on the first batch's examples (the first
    /// `count` of `examples`, un-augmented) before any training.
    /// - Throws: `NonFiniteTeacherOutput` when a teacher's logits there are not finite.
    public static func models(checking teachers: [Model], on examples: Examples, count: Int) throws
        -> TeacherSignal
    {
        let first = examples.subset(0..<min(count, examples.count))
        for (member, teacher) in teachers.enumerated() {
            let logits = try inferLogits(model: teacher, examples: first)
            if let i = logits.firstIndex(where: { !$0.isFinite }) {
                throw NonFiniteTeacherOutput(
                    member: member, example: i / teacher.classes,
                    classIndex: i % teacher.classes, value: logits[i])
            }
        }
        return .models(teachers)
    }

    /// `T log(mean_m softmax(t_m / T))` row by row (`ensembleLogProbabilities`, floored at the log
    /// of the smallest normal Float).
    static func ensembleLogits(_ members: [[Float]], classes: Int, temperature: Float) throws
        -> [Float]
    {
        let count = members[0].count
        let logMean = try members.flatMap { $0 }.withUnsafeBufferPointer { all in
            let buffers = members.indices.map {
                UnsafeBufferPointer(rebasing: all[($0 * count)..<(($0 + 1) * count)])
            }
            return try ensembleLogProbabilities(
                buffers, rows: count / classes, classes: classes, temperature: temperature)
        }
        let floor = log(1.2e-38)
        return logMean.map { Float(Double(temperature) * max($0, floor)) }
    }
}

/// A teacher whose logits are not finite on a training example: refused before training, since
/// its soft targets would only surface later as a diverged loss.
public struct NonFiniteTeacherOutput: Error, CustomStringConvertible, Equatable {
    /// Which teacher of the ensemble (0 for a single teacher).
    public let member: Int
    /// The training example (its row in the training file) and the class.
    public let example: Int, classIndex: Int
    public let value: Float

    public var description: String {
        "the teacher's logit for class \(classIndex) of training example \(example) is \(value); a teacher's outputs must be finite"
    }
}
