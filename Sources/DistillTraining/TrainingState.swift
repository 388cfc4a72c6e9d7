import DistillCore
import DistillFormats
import DistillNN
import Foundation

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
    /// The settings of the run that saved the state (a resume with other settings is refused).
    public internal(set) var settings = ""
    /// Restored with the state, applied by `apply(to:optimizer:temperature:)`.
    private var savedWeights: [[Float]] = []
    private var savedOptimizer: OptimizerState?
    private var savedGenerators: [SeededGenerator] = []
    private var savedTemperature: Double?

    static let format = "distill-training-state/2"

    init(best: [[Float]]) {
        self.best = best
    }

    func restoreBest(into parameters: [Parameter]) {
        for (p, v) in zip(parameters, best) {
            v.withUnsafeBufferPointer {
                p.value.pointer.update(from: $0.baseAddress!, count: v.count)
            }
        }
    }

    /// Starts the next epoch's position.
    func startEpoch() {
        epoch += 1
        batchInEpoch = 0
    }

    /// Puts the saved weights, optimizer state, dropout generators and temperature policy state
    /// into a freshly built model, optimizer and policy.
    func apply(to model: Model, optimizer: any Optimizer, temperature: (any TemperaturePolicy)?)
        throws
    {
        let parameters = model.parameters
        guard savedWeights.count == parameters.count,
            zip(savedWeights, parameters).allSatisfy({ $0.count == $1.value.count }),
            best.count == parameters.count
        else {
            throw TrainingError.invalidOption("the saved training state does not fit this model")
        }
        for (p, v) in zip(parameters, savedWeights) {
            v.withUnsafeBufferPointer {
                p.value.pointer.update(from: $0.baseAddress!, count: v.count)
            }
        }
        if let savedOptimizer { try optimizer.restore(savedOptimizer, for: parameters) }
        let dropouts = model.network.dropoutLayers
        guard dropouts.count == savedGenerators.count else {
            throw TrainingError.invalidOption(
                "the saved training state does not fit this model's dropout layers")
        }
        for (layer, generator) in zip(dropouts, savedGenerators) { layer.generator = generator }
        temperature?.checkpointValue = savedTemperature
    }

    /// The metadata of a saved state: one JSON object under the key `state`.
    private struct Saved: Codable {
        var globalStep: Int, epoch: Int, batchInEpoch: Int, round: Int
        var bestEpoch: Int, bestAccuracy: Double?, sinceImprovement: Int
        var elapsed: Double
        var settings: String
        /// The temperature policy's state (CTKD's theta), if it has one.
        var temperature: Double?
        var optimizerSteps: Int
        /// Per optimizer slot name, its tensor count (tensors `optimizer.<name>.<i>`).
        var optimizerSlots: [String: Int]
        /// Each dropout layer's generator state, four words as decimal strings (JSON numbers lose
        /// 64-bit integers in some readers).
        var generators: [[String]]
        var sums: RoundSums
        var records: [EpochRecord]
    }

    /// Writes the state atomically to `path` (a safetensors file: the model's weights, the best
    /// weights and the optimizer's slots as tensors, everything else in the JSON metadata).
    func save(
        to path: String, model: Model, optimizer: any Optimizer,
        temperature: (any TemperaturePolicy)?
    ) throws {
        var tensors: [SafeTensors.Input] = []
        for (name, p) in model.network.namedParameters {
            tensors.append(.init(name: "model." + name, shape: p.value.shape, values: p.value))
        }
        for ((name, p), values) in zip(model.network.namedParameters, best) {
            tensors.append(
                .init(
                    name: "best." + name, shape: p.value.shape,
                    values: Tensor(shape: p.value.shape, values: values)))
        }
        let optimizerState = optimizer.state
        for key in optimizerState.slots.keys.sorted() {
            for (i, t) in optimizerState.slots[key]!.enumerated() {
                tensors.append(.init(name: "optimizer.\(key).\(i)", shape: t.shape, values: t))
            }
        }
        let generators = model.network.dropoutLayers.map(\.generator.state)
        let saved = Saved(
            globalStep: globalStep, epoch: epoch, batchInEpoch: batchInEpoch, round: round,
            bestEpoch: bestEpoch, bestAccuracy: bestAccuracy, sinceImprovement: sinceImprovement,
            elapsed: elapsed, settings: settings, temperature: temperature?.checkpointValue,
            optimizerSteps: optimizerState.stepCount,
            optimizerSlots: optimizerState.slots.mapValues(\.count),
            generators: generators.map { [$0.0, $0.1, $0.2, $0.3].map(String.init) }, sums: sums,
            records: records)
        let json = String(decoding: try JSONEncoder().encode(saved), as: UTF8.self)
        try SafeTensors.write(
            tensors, metadata: ["format": TrainingState.format, "state": json], to: path)
    }

    /// Reads a state written by `save`, for a model with `parameterNames` (checkpoint order).
    /// - Throws: `FileError` naming the file when it is not a training state or is incomplete.
    public static func load(from path: String, parameterNames: [String]) throws -> TrainingState {
        let file = try SafeTensors.read(path)
        func fail(_ problem: String) -> FileError { FileError(path, problem) }
        guard file.metadata["format"] == format else {
            throw fail(
                "not a training state of this version of Distill (format \(file.metadata["format"] ?? "missing"), expected \(format))"
            )
        }
        let saved: Saved
        do {
            saved = try JSONDecoder().decode(
                Saved.self, from: Data((file.metadata["state"] ?? "").utf8))
        } catch {
            throw fail("the training state's metadata is malformed")
        }
        let state = TrainingState(best: try parameterNames.map { try file.floats("best." + $0) })
        state.savedWeights = try parameterNames.map { try file.floats("model." + $0) }
        (state.globalStep, state.epoch, state.batchInEpoch, state.round) = (
            saved.globalStep, saved.epoch, saved.batchInEpoch, saved.round
        )
        (state.bestEpoch, state.bestAccuracy, state.sinceImprovement) = (
            saved.bestEpoch, saved.bestAccuracy, saved.sinceImprovement
        )
        (state.elapsed, state.settings, state.savedTemperature) = (
            saved.elapsed, saved.settings, saved.temperature
        )
        (state.sums, state.records) = (saved.sums, saved.records)
        var slots: [String: [Tensor]] = [:]
        for (key, count) in saved.optimizerSlots {
            slots[key] = try (0..<count).map { i in
                let name = "optimizer.\(key).\(i)"
                guard let e = file.entry(name) else { throw fail("missing tensor \(name)") }
                return Tensor(shape: e.shape, values: try file.floats(name))
            }
        }
        state.savedOptimizer = OptimizerState(slots: slots, stepCount: saved.optimizerSteps)
        state.savedGenerators = try saved.generators.map { text in
            let words = text.compactMap { UInt64($0) }
            guard words.count == 4 else {
                throw fail("malformed generator state in the training state")
            }
            return SeededGenerator(state: (words[0], words[1], words[2], words[3]))
        }
        return state
    }
}
