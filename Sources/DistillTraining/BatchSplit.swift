import DistillCore
import DistillNN

/// A model's training-mode forward and backward passes with the batch's examples split across the
/// cores (`splitAcrossCores`): part 0 runs on the model itself, each other part on a replica that
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
/// forward pass, so a run is reproducible from the model's generators alone (a training
/// checkpoint's).
final class BatchSplit {
    let model: Model
    /// The most parts a batch is split into (fewer when it has fewer examples).
    let maximumParts: Int
    private let parameters: [Parameter]
    private var replicas: [Model] = []
    /// The examples of parts 1... and their rows of the logits' gradient.
    private var inputs: [Tensor] = []
    private var gradients: [Tensor] = []
    /// The parts' logits side by side, `[rows, classes]`.
    private var logits = Tensor(zeros: [0])
    /// The rows of the logits of each part in the last forward pass (one range: no split).
    private var rows: [Range<Int>] = []

    init(model: Model, maximumParts: Int) {
        precondition(maximumParts >= 1)
        self.model = model
        self.maximumParts = maximumParts
        self.parameters = model.parameters
    }

    /// Whether the last forward pass ran in parts (the model's parameters then get their gradient
    /// from `backward` as a sum, not accumulated into an optimizer's state directly).
    var isSplit: Bool { rows.count > 1 }

    /// The logits of a training-mode forward pass over `batch` (`[N] + model.inputShape`),
    /// `[N * positions, classes]`; the tensor belongs to the split (or, unsplit, to the model).
    func forward(_ batch: Tensor) -> Tensor {
        let n = batch.shape.first ?? 0
        let parts = min(maximumParts, n)
        guard parts > 1 else {
            let out = model.forward(batch, mode: .training)
            rows = [0..<out.shape[0]]
            return out
        }
        while replicas.count < parts - 1 {
            replicas.append(model.replica())
            inputs.append(Tensor(zeros: [0]))
            gradients.append(Tensor(zeros: [0]))
        }
        let models = [model] + replicas.prefix(parts - 1)
        for replica in models.dropFirst() {
            for (mine, theirs) in zip(model.network.dropoutLayers, replica.network.dropoutLayers) {
                theirs.generator = mine.generator.split()
            }
        }
        let examples = (0..<parts).map { n * $0 / parts..<n * ($0 + 1) / parts }
        let perExample = batch.count / n
        let exampleShape = Array(batch.shape.dropFirst())
        for part in 1..<parts {
            let range = examples[part]
            inputs[part - 1].resize(to: [range.count] + exampleShape)
            inputs[part - 1].pointer.update(
                from: batch.pointer + range.lowerBound * perExample,
                count: range.count * perExample)
        }
        let partInputs =
            [Tensor(shape: [examples[0].count] + exampleShape, storage: batch.storage)]
            + inputs.prefix(parts - 1)
        let (positions, classes) = (model.positions, model.classes)
        rows = examples.map { $0.lowerBound * positions..<$0.upperBound * positions }
        logits.resize(to: [n * positions, classes])
        let (out, partRows) = (SendablePointer(logits.pointer), rows)
        splitAcrossCores(parts) { part in
            let y = models[part].forward(partInputs[part], mode: .training)
            precondition(y.count == partRows[part].count * classes, "BatchSplit: logits \(y.shape)")
            (out.pointer + partRows[part].lowerBound * classes).update(
                from: y.pointer, count: y.count)
        }
        return logits
    }

    /// Back-propagates `dL/d logits` (`[N * positions, classes]`) from the last `forward`,
    /// accumulating the model's parameter gradients (the parts' summed in part order).
    func backward(_ logitsGradient: Tensor) {
        guard isSplit else { return model.backward(logitsGradient) }
        let classes = logitsGradient.shape[1]
        let parts = rows.count
        precondition(logitsGradient.shape[0] == rows[parts - 1].upperBound)
        let models = [model] + replicas.prefix(parts - 1)
        for replica in models.dropFirst() { replica.zeroGradients() }
        for part in 1..<parts { gradients[part - 1].resize(to: [rows[part].count, classes]) }
        let partGradients =
            [Tensor(shape: [rows[0].count, classes], storage: logitsGradient.storage)]
            + gradients.prefix(parts - 1)
        let (source, partRows) = (SendablePointer(logitsGradient.pointer), rows)
        splitAcrossCores(parts) { part in
            let g = partGradients[part]
            if part > 0 {
                g.pointer.update(
                    from: source.pointer + partRows[part].lowerBound * classes, count: g.count)
            }
            models[part].backward(g)
        }
        for replica in models.dropFirst() {
            for (mine, theirs) in zip(parameters, replica.parameters) where !theirs.hasZeroGradient
            {
                if let gradient = theirs.gradient { mine.addToGradient(gradient) }
            }
        }
    }
}
