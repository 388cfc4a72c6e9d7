import DistillCore
import DistillNN

/// A model's forward (training or inference mode) and backward passes with the batch's examples
/// split across the cores (`splitAcrossCores`): part 0 runs on the model itself, each other part on a replica that
/// shares its weights (`Model.replica()`), and after the backward pass the replicas' parameter
/// gradients are added to the model's, in part order.
///
/// Each part is one hand-off to a core for the whole pass, where splitting each product and each
/// element-wise pass over the cores costs one hand-off per call; and a part's activations stay in
/// its core's cache from one layer to the next. The logits come back as one tensor, rows in the
/// batch's order, so the loss sees the whole batch as it would without the split. The gradients
/// sum in another order than one pass over the whole batch would take: a run rounds differently
/// with a different number of parts (`processorCount`, which `DISTILL_THREADS` sets).
///
/// With dropout, each replica's dropout layers take generators split off the model's at every
/// training-mode forward pass, so a run is reproducible from the model's generators alone (a training
/// checkpoint's).
final class BatchSplit {
    let model: Model
    /// The most parts a batch is split into (fewer when it has fewer examples).
    let maximumParts: Int
    private let parameters: [Parameter]
    private let dropouts: [Dropout]
    /// Parts 1, 2, ... (part 0 is the model itself), made as batches first need them.
    private var replicas: [Replica] = []
    /// The parts' logits side by side, `[rows, classes]`.
    private var logits = Tensor(zeros: [0])
    /// The rows of the logits of each part in the last forward pass (one range: no split).
    private var rows: [Range<Int>] = []

    /// A part other than the first: a replica of the model, its parameters and dropout layers in
    /// the model's order, and its examples and rows of the logits' gradient, copied (a tensor
    /// starts at its storage's start, so only part 0 can be a view of the batch's).
    private final class Replica {
        let model: Model
        let parameters: [Parameter]
        let dropouts: [Dropout]
        var input = Tensor(zeros: [0])
        var logitsGradient = Tensor(zeros: [0])

        init(of model: Model) {
            self.model = model.replica()
            parameters = self.model.parameters
            dropouts = self.model.network.dropoutLayers
        }
    }

    init(model: Model, maximumParts: Int) {
        precondition(maximumParts >= 1)
        self.model = model
        self.maximumParts = maximumParts
        parameters = model.parameters
        dropouts = model.network.dropoutLayers
    }

    /// Whether the last forward pass ran in parts.
    var isSplit: Bool { rows.count > 1 }

    /// The logits of a forward pass over `batch` (`[N] + model.inputShape`), `[N * positions,
    /// classes]`; the tensor belongs to the split (or, unsplit, to the model). In training mode
    /// (for `backward`), the replicas' dropout layers first take generators split off the model's;
    /// in inference mode, which draws nothing, the generators are left as they are.
    func forward(_ batch: Tensor, mode: Mode = .training) -> Tensor {
        let n = batch.shape.first ?? 0
        let parts = min(maximumParts, n)
        guard parts > 1 else {
            let out = model.forward(batch, mode: mode)
            rows = [0..<out.shape[0]]
            return out
        }
        while replicas.count < parts - 1 { replicas.append(Replica(of: model)) }
        let replicas = self.replicas.prefix(parts - 1)
        if mode == .training {
            for replica in replicas {
                for (mine, theirs) in zip(dropouts, replica.dropouts) {
                    theirs.generator = mine.generator.split()
                }
            }
        }
        let examples = (0..<parts).map { n * $0 / parts..<n * ($0 + 1) / parts }
        let exampleShape = Array(batch.shape.dropFirst())
        let first = Tensor(shape: [examples[0].count] + exampleShape, storage: batch.storage)
        for (replica, range) in zip(replicas, examples.dropFirst()) {
            replica.input.resize(to: [range.count] + exampleShape)
        }
        let (positions, classes) = (model.positions, model.classes)
        rows = examples.map { $0.lowerBound * positions..<$0.upperBound * positions }
        logits.resize(to: [n * positions, classes])
        let (source, out, partRows) = (
            SendablePointer(batch.pointer), SendablePointer(logits.pointer), rows
        )
        let perExample = batch.count / n
        splitAcrossCores(parts) { part in
            var (model, input) = (self.model, first)
            if part > 0 {
                let replica = replicas[replicas.startIndex + part - 1]
                (model, input) = (replica.model, replica.input)
                input.pointer.update(
                    from: source.pointer + examples[part].lowerBound * perExample,
                    count: input.count)
            }
            let y = model.forward(input, mode: mode)
            precondition(y.count == partRows[part].count * classes, "BatchSplit: logits \(y.shape)")
            (out.pointer + partRows[part].lowerBound * classes).update(
                from: y.pointer, count: y.count)
        }
        return logits
    }

    /// Back-propagates `dL/d logits` (`[N * positions, classes]`) from the last `forward`,
    /// accumulating the model's parameter gradients: the replicas' are added to the model's
    /// through its accumulation targets (`Parameter.addToGradient`), in part order.
    func backward(_ logitsGradient: Tensor) {
        guard isSplit else { return model.backward(logitsGradient) }
        let classes = logitsGradient.shape[1]
        let parts = rows.count
        precondition(logitsGradient.shape[0] == rows[parts - 1].upperBound)
        let replicas = self.replicas.prefix(parts - 1)
        for (replica, range) in zip(replicas, rows.dropFirst()) {
            replica.model.zeroGradients()
            replica.logitsGradient.resize(to: [range.count, classes])
        }
        let first = Tensor(shape: [rows[0].count, classes], storage: logitsGradient.storage)
        let (source, partRows) = (SendablePointer(logitsGradient.pointer), rows)
        splitAcrossCores(parts) { part in
            guard part > 0 else { return model.backward(first) }
            let replica = replicas[replicas.startIndex + part - 1]
            let g = replica.logitsGradient
            g.pointer.update(
                from: source.pointer + partRows[part].lowerBound * classes, count: g.count)
            replica.model.backward(g)
        }
        for replica in replicas {
            for (mine, theirs) in zip(parameters, replica.parameters) where !theirs.hasZeroGradient
            {
                if let gradient = theirs.gradient { mine.addToGradient(gradient) }
            }
        }
    }
}
