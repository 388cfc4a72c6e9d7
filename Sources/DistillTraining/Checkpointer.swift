import DistillCore
import DistillNN

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a run saves its full training state, how often, and the settings a resume must match.
public struct Checkpointing: Sendable, Equatable {
    /// The state file (`MODEL.state.safetensors` for the command line).
    public let path: String
    /// Save every this many steps; the state is also saved after every validation and when the
    /// run is interrupted.
    public let every: Int
    /// The run's settings, recorded in the state: a resume with other settings is refused.
    public let settings: String

    public init(path: String, every: Int, settings: String) {
        self.path = path
        self.every = every
        self.settings = settings
    }
}

/// Saves a run's `TrainingState` when it is due, and removes it once the run has finished (it
/// exists to resume an unfinished run).
final class Checkpointer {
    let plan: Checkpointing?
    let model: Model
    let optimizer: any Optimizer
    let temperature: (any TemperaturePolicy)?
    /// When the run started, on the monotonic clock, less the time before a resume.
    let start: Double

    init(
        _ plan: Checkpointing?, model: Model, optimizer: any Optimizer,
        temperature: (any TemperaturePolicy)?,
        start: Double
    ) {
        self.plan = plan
        self.model = model
        self.optimizer = optimizer
        self.temperature = temperature
        self.start = start
    }

    /// After a step: saves every `every` steps, except at a round's end (the validation saves).
    func stepDone(_ state: TrainingState, roundEnd: Int) throws {
        guard let plan, state.globalStep % plan.every == 0, state.globalStep < roundEnd else {
            return
        }
        try save(state)
    }

    /// After a validation, when rounds remain.
    func roundDone(_ state: TrainingState, rounds: Int) throws {
        guard state.round <= rounds else { return }
        try save(state)
    }

    func save(_ state: TrainingState) throws {
        guard let plan else { return }
        state.elapsed = monotonicSeconds() - start
        try state.save(to: plan.path, model: model, optimizer: optimizer, temperature: temperature)
    }

    /// The run finished: its state is no longer needed.
    func finished() {
        if let plan { unlink(plan.path) }
    }
}

extension TrainingState {
    /// The state at `path`, saved by a run of `model` with the same `settings`, to continue from.
    /// - Throws: `TrainingError.invalidOption` when there is no state or it was saved with other
    ///   settings; `FileError` when the file is not a valid state.
    public static func resume(from path: String, settings: String, model: Model) throws
        -> TrainingState
    {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw TrainingError.invalidOption(
                "--resume: no training state at \(path) (it is written with --checkpoint-every N)")
        }
        let state = try TrainingState.load(
            from: path, parameterNames: model.network.namedParameters.map(\.name))
        guard state.settings == settings else {
            throw TrainingError.invalidOption(
                "--resume: \(path) was saved by a run with other settings; use the same flags")
        }
        return state
    }
}
