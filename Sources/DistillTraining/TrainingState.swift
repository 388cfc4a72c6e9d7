import DistillCore
import DistillFormats
import DistillNN

/// Everything a training run carries from step to step, so that a run stopped at any point and
/// resumed from its last saved state ends with the same model file, bit for bit, as a run that
/// never stopped: the position (round, epoch, batch, step), the best weights and their round, the
/// records and the current round's running sums; with the model's current weights, the
/// optimizer's state and the dropout generators' states, which `save` writes beside it.
///
/// Batches need no state: each epoch's order and augmentation depend only on the seed, the epoch
/// and the batch index.
public final class TrainingState {
    public internal(set) var globalStep = 0
    public internal(set) var epoch = 0
    public internal(set) var batchInEpoch = 0
    /// The round (validation point) under way, from 1.
    public internal(set) var round = 1
    var best: [[Float]]
    public internal(set) var bestAccuracy: Double?
    public internal(set) var bestEpoch = 0
    var sinceImprovement = 0
    var stoppedEarly = false
    public internal(set) var records: [EpochRecord] = []
    var sums = RoundSums()
    /// Seconds of training before the state was saved.
    var elapsed = 0.0
    /// CTKD's temperature parameter, when the run learns its temperature.
    var adaptiveTheta: Double?
    /// The settings of the run that saved the state (a resume with other settings is refused).
    public internal(set) var settings = ""
    /// Restored with the state, applied by `apply(to:optimizer:)`.
    private var savedWeights: [[Float]] = []
    private var savedOptimizer: OptimizerState?
    private var savedGenerators: [SeededGenerator] = []

    init(best: [[Float]]) {
        self.best = best
    }

    func restoreBest(into parameters: [Parameter]) {
        for (p, v) in zip(parameters, best) {
            v.withUnsafeBufferPointer { p.value.pointer.update(from: $0.baseAddress!, count: v.count) }
        }
    }

    /// Puts the saved weights, optimizer state and dropout generators into a freshly built model
    /// and optimizer.
    func apply(to model: Model, optimizer: any Optimizer) throws {
        let parameters = model.parameters
        guard savedWeights.count == parameters.count, zip(savedWeights, parameters).allSatisfy({ $0.count == $1.value.count }),
              best.count == parameters.count else {
            throw TrainingError.invalidOption("the saved training state does not fit this model")
        }
        for (p, v) in zip(parameters, savedWeights) {
            v.withUnsafeBufferPointer { p.value.pointer.update(from: $0.baseAddress!, count: v.count) }
        }
        if let savedOptimizer { try optimizer.restore(savedOptimizer, for: parameters) }
        let dropouts = model.network.layers.compactMap { $0 as? Dropout }
        guard dropouts.count == savedGenerators.count else {
            throw TrainingError.invalidOption("the saved training state does not fit this model's dropout layers")
        }
        for (layer, generator) in zip(dropouts, savedGenerators) { layer.generator = generator }
    }

    /// Writes the state atomically to `path` (a safetensors file).
    func save(to path: String, model: Model, optimizer: any Optimizer) throws {
        var tensors: [SafeTensors.Input] = []
        for (name, p) in model.network.namedParameters {
            tensors.append(.init(name: "model." + name, shape: p.value.shape, values: p.value))
        }
        for ((name, p), values) in zip(model.network.namedParameters, best) {
            tensors.append(.init(name: "best." + name, shape: p.value.shape, values: Tensor(shape: p.value.shape, values: values)))
        }
        let optimizerState = optimizer.state
        for key in optimizerState.slots.keys.sorted() {
            for (i, t) in optimizerState.slots[key]!.enumerated() {
                tensors.append(.init(name: "optimizer.\(key).\(i)", shape: t.shape, values: t))
            }
        }
        let generators = model.network.layers.compactMap { ($0 as? Dropout)?.generator.state }
        var meta: [String: String] = [
            "format": "distill-training-state/1",
            "settings": settings,
            "adaptive_theta": adaptiveTheta.map { "\($0)" } ?? "-",
            "position": "\(globalStep),\(epoch),\(batchInEpoch),\(round)",
            "best": "\(bestEpoch),\(bestAccuracy.map { "\($0)" } ?? "-"),\(sinceImprovement)",
            "elapsed": "\(elapsed)",
            "optimizer_steps": "\(optimizerState.stepCount)",
            "optimizer_slots": optimizerState.slots.keys.sorted().map { "\($0):\(optimizerState.slots[$0]!.count)" }.joined(separator: ","),
            "generators": generators.map { "\($0.0),\($0.1),\($0.2),\($0.3)" }.joined(separator: ";"),
            "sums": "\(sums.loss),\(sums.soft),\(sums.hard),\(sums.batches),\(sums.correct),\(sums.labelled),\(sums.hasSoft),\(sums.hasHard)",
        ]
        meta["records"] = records.map { r in
            [ "\(r.epoch)", "\(r.step)", "\(r.loss)", r.softLoss.map { "\($0)" } ?? "-", r.hardLoss.map { "\($0)" } ?? "-",
              "\(r.trainingAccuracy)", r.validationAccuracy.map { "\($0)" } ?? "-", "\(r.learningRate)", "\(r.seconds)" ]
                .joined(separator: ",")
        }.joined(separator: ";")
        try SafeTensors.write(tensors, metadata: meta, to: path)
    }

    /// Reads a state written by `save`, for a model with `parameterNames` (checkpoint order).
    /// - Throws: `FileError` naming the file when it is not a training state or is incomplete.
    public static func load(from path: String, parameterNames: [String]) throws -> TrainingState {
        let file = try SafeTensors.read(path)
        func fail(_ problem: String) -> FileError { FileError(path, problem) }
        let meta = file.metadata
        guard meta["format"] == "distill-training-state/1" else { throw fail("not a Distill training state") }
        func numbers<T: LosslessStringConvertible>(_ key: String, _ count: Int) throws -> [T] {
            let parts = (meta[key] ?? "").split(separator: ",", omittingEmptySubsequences: false).map { T(String($0)) }
            guard parts.count == count, parts.allSatisfy({ $0 != nil }) else { throw fail("malformed '\(key)' in the training state") }
            return parts.map { $0! }
        }
        let position: [Int] = try numbers("position", 4)
        let bestParts = (meta["best"] ?? "").split(separator: ",").map(String.init)
        guard bestParts.count == 3, let bestEpoch = Int(bestParts[0]), let since = Int(bestParts[2]) else {
            throw fail("malformed 'best' in the training state")
        }
        let state = TrainingState(best: try parameterNames.map { try file.floats("best." + $0) })
        state.savedWeights = try parameterNames.map { try file.floats("model." + $0) }
        (state.globalStep, state.epoch, state.batchInEpoch, state.round) = (position[0], position[1], position[2], position[3])
        state.bestEpoch = bestEpoch
        state.bestAccuracy = Double(bestParts[1])
        state.sinceImprovement = since
        state.elapsed = Double(meta["elapsed"] ?? "") ?? 0
        state.settings = meta["settings"] ?? ""
        state.adaptiveTheta = Double(meta["adaptive_theta"] ?? "-")
        let sumParts = (meta["sums"] ?? "").split(separator: ",").map(String.init)
        guard sumParts.count == 8, let l = Double(sumParts[0]), let so = Double(sumParts[1]), let h = Double(sumParts[2]),
              let b = Int(sumParts[3]), let c = Int(sumParts[4]), let lab = Int(sumParts[5]) else {
            throw fail("malformed 'sums' in the training state")
        }
        state.sums = RoundSums()
        (state.sums.loss, state.sums.soft, state.sums.hard, state.sums.batches, state.sums.correct, state.sums.labelled) = (l, so, h, b, c, lab)
        state.sums.hasSoft = sumParts[6] == "true"
        state.sums.hasHard = sumParts[7] == "true"
        var slots: [String: [Tensor]] = [:]
        for entry in (meta["optimizer_slots"] ?? "").split(separator: ",") {
            let kv = entry.split(separator: ":")
            guard kv.count == 2, let count = Int(kv[1]) else { throw fail("malformed 'optimizer_slots' in the training state") }
            slots[String(kv[0])] = try (0..<count).map { i in
                let name = "optimizer.\(kv[0]).\(i)"
                guard let e = file.entry(name) else { throw fail("missing tensor \(name)") }
                return Tensor(shape: e.shape, values: try file.floats(name))
            }
        }
        state.savedOptimizer = OptimizerState(slots: slots, stepCount: Int(meta["optimizer_steps"] ?? "") ?? 0)
        state.savedGenerators = try (meta["generators"] ?? "").split(separator: ";").map { text in
            let words = text.split(separator: ",").compactMap { UInt64($0) }
            guard words.count == 4 else { throw fail("malformed 'generators' in the training state") }
            return SeededGenerator(state: (words[0], words[1], words[2], words[3]))
        }
        state.records = try (meta["records"] ?? "").split(separator: ";").map { text in
            let f = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 9, let e = Int(f[0]), let st = Int(f[1]), let lo = Double(f[2]), let ta = Double(f[5]),
                  let lr = Float(f[7]), let sec = Double(f[8]) else { throw fail("malformed 'records' in the training state") }
            return EpochRecord(epoch: e, step: st, loss: lo, softLoss: Double(f[3]), hardLoss: Double(f[4]), trainingAccuracy: ta,
                               validationAccuracy: Double(f[6]), learningRate: lr, seconds: sec)
        }
        return state
    }
}
