import DistillCore
/// Layers applied in order. Parameters are named `layers.<i>.<name>` with `i` the layer's index,
/// as in a PyTorch `nn.Sequential` held in an attribute named `layers`.
///
/// Between a `Conv2D` and the next `Conv2D` or `Flatten`, when only `MaxPool2D` and `ReLU` (which
/// treat each plane alike) stand between them, activations and their gradients travel
/// channel-major, `[C, N, H, W]` in memory under an `[N, C, H, W]` shape, which spares the
/// convolutions a permutation each way (see `Conv2D`). The network's input and output keep
/// their usual layout; the layers of such a run, called one by one in order, do the same.
public final class Sequential: Layer {
    public let layers: [any Layer]
    public var computesInputGradient: Bool {
        get { layers.first?.computesInputGradient ?? true }
        set { layers.first?.computesInputGradient = newValue }
    }

    public init(_ layers: [any Layer]) {
        self.layers = layers
        // Start from NCHW everywhere (a Sequential built earlier around these layers may have
        // set the flags), then mark the runs.
        for layer in layers {
            if let conv = layer as? Conv2D { conv.inputIsChannelMajor = false; conv.outputIsChannelMajor = false }
            if let flatten = layer as? Flatten { flatten.inputIsChannelMajor = false }
        }
        var producer: Conv2D?   // a convolution whose output reaches the current layer plane-wise
        for layer in layers {
            if let conv = layer as? Conv2D {
                if let producer { producer.outputIsChannelMajor = true; conv.inputIsChannelMajor = true }
                producer = conv
            } else if let flatten = layer as? Flatten {
                if let producer { producer.outputIsChannelMajor = true; flatten.inputIsChannelMajor = true }
                producer = nil
            } else if !(layer is MaxPool2D || layer is ReLU) {
                producer = nil
            }
        }
    }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }

    /// Every parameter with its checkpoint name, in layer order.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        layers.enumerated().flatMap { index, layer in
            layer.parameters.map { (name: "layers.\(index).\($0.name)", parameter: $0) }
        }
    }

    public var descriptor: String { layers.map(\.descriptor).joined(separator: " ") }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try layers.reduce(inputShape) { try $1.outputShape(for: $0) }
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        var x = input
        for layer in layers { x = layer.forward(x, mode: mode) }
        return x
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        var g = outputGradient
        for layer in layers.reversed() { g = layer.backward(g) }
        return g
    }
}
