import DistillCore

/// Layers applied in order. Parameters are named `layers.<i>.<name>` with `i` the layer's index,
/// as in a PyTorch `nn.Sequential` held in an attribute named `layers`.
///
/// Between a `Conv2D` and the next `Conv2D` or `Flatten`, when only `MaxPool2D` and `ReLU` (which
/// treat each plane alike) stand between them, activations and their gradients travel
/// channel-major, `[C, N, H, W]` in memory under an `[N, C, H, W]` shape, which spares the
/// convolutions a permutation each way (see `Conv2D`). The plan is `layouts`, made when the
/// `Sequential` is built and passed to each layer's forward pass; the layers themselves keep no
/// such setting, so a layer in two `Sequential`s follows each one's plan. The network's input and
/// output keep their usual layout.
public final class Sequential: Layer {
    public let layers: [any Layer]
    /// The memory layout of each layer's input and output.
    public let layouts: [ActivationLayout]
    public var computesInputGradient: Bool {
        get { layers.first?.computesInputGradient ?? true }
        set { layers.first?.computesInputGradient = newValue }
    }

    /// - Parameter channelMajor: plan channel-major hand-overs (false: NCHW everywhere, the
    ///   reference the tests compare with).
    public init(_ layers: [any Layer], channelMajor: Bool = true) {
        self.layers = layers
        self.layouts = channelMajor ? Sequential.plan(layers) : layers.map { _ in .nchw }
    }

    /// Channel-major from a convolution to the next convolution or `Flatten` reached through
    /// pooling and ReLU only; NCHW everywhere else.
    static func plan(_ layers: [any Layer]) -> [ActivationLayout] {
        var layouts = layers.map { _ in ActivationLayout.nchw }
        var producer: Int?  // a convolution whose output reaches the current layer plane-wise
        for (i, layer) in layers.enumerated() {
            if layer is Conv2D || layer is Flatten {
                if let producer {
                    layouts[producer].outputIsChannelMajor = true
                    layouts[i].inputIsChannelMajor = true
                }
                producer = layer is Conv2D ? i : nil
            } else if !(layer is MaxPool2D || layer is ReLU) {
                producer = nil
            }
        }
        return layouts
    }

    /// Every parameter once, in layer order (a weight two layers share comes at its first).
    public var parameters: [Parameter] { namedParameters.map(\.parameter) }

    /// Every parameter with its checkpoint name, in layer order.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var seen = Set<ObjectIdentifier>()
        return layers.enumerated().flatMap { index, layer in
            layer.namedParameters.compactMap {
                seen.insert(ObjectIdentifier($0.parameter)).inserted
                    ? (name: "layers.\(index).\($0.name)", parameter: $0.parameter) : nil
            }
        }
    }

    public var descriptor: String { layers.map(\.descriptor).joined(separator: " ") }

    public var dropoutLayers: [Dropout] { layers.flatMap(\.dropoutLayers) }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try layers.reduce(inputShape) { try $1.outputShape(for: $0) }
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        var x = input
        for (layer, layout) in zip(layers, layouts) {
            x = layer.forward(x, mode: mode, layout: layout)
        }
        return x
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        var g = outputGradient
        for layer in layers.reversed() { g = layer.backward(g) }
        return g
    }
}
