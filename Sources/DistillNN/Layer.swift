import DistillCore

/// Whether a forward pass trains (dropout active, activations kept for backward) or infers.
public enum Mode: Sendable {
    case training
    case inference
}

/// A layer: a forward and a backward pass over a batch (the first dimension of every shape).
///
/// Tensors a layer returns belong to the layer and are overwritten by its next call, so a
/// training step allocates nothing once the batch size has been seen.
public protocol Layer: AnyObject {
    /// The shape of the output for an input of `inputShape` (batch first).
    /// - Throws: `ArchitectureError` when the layer cannot take that shape.
    func outputShape(for inputShape: [Int]) throws -> [Int]

    /// Computes the output. In `.training` mode the layer keeps what `backward` needs.
    func forward(_ input: Tensor, mode: Mode) -> Tensor

    /// The forward pass with input and output laid out in memory as `layout` says (`Sequential`
    /// passes its plan); `backward` follows the layout of the last forward pass. Layers that do not
    /// care take it as NCHW: the default calls `forward(_:mode:)`.
    func forward(_ input: Tensor, mode: Mode, layout: ActivationLayout) -> Tensor

    /// Given `dL/d output` for the last training-mode forward pass, adds the parameter gradients
    /// into `parameters[i].gradient` and returns `dL/d input` (empty when
    /// `computesInputGradient` is false).
    func backward(_ outputGradient: Tensor) -> Tensor

    /// The trainable parameters, in checkpoint order.
    var parameters: [Parameter] { get }

    /// The parameters with the names a checkpoint gives them inside this layer (the default: each
    /// parameter's own name; a layer made of layers prefixes theirs, as PyTorch's submodules do).
    var namedParameters: [(name: String, parameter: Parameter)] { get }

    /// False for the first layer of a network: nothing needs the gradient of the input data.
    var computesInputGradient: Bool { get set }

    /// A one-token description (e.g. `linear:784:1200`) that `LayerDescriptor.make` turns back
    /// into the same layer; checkpoints record it.
    var descriptor: String { get }

    /// The dropout layers in this layer, itself included, in order: their generators are part
    /// of a training checkpoint.
    var dropoutLayers: [Dropout] { get }
}

extension Layer {
    public var parameters: [Parameter] { [] }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        parameters.map { ($0.name, $0) }
    }

    public var dropoutLayers: [Dropout] { (self as? Dropout).map { [$0] } ?? [] }

    public func forward(_ input: Tensor, mode: Mode, layout: ActivationLayout) -> Tensor {
        forward(input, mode: mode)
    }
}

/// How a layer's input and output lie in memory. The shapes always read `[N, C, H, W]`; a
/// channel-major tensor is ordered `[C, N, H, W]` in memory, the layout a convolution's GEMM
/// produces and consumes, which spares a permutation between convolutions (see `Conv2D`).
public struct ActivationLayout: Sendable, Equatable {
    public var inputIsChannelMajor: Bool
    public var outputIsChannelMajor: Bool

    public init(inputIsChannelMajor: Bool = false, outputIsChannelMajor: Bool = false) {
        self.inputIsChannelMajor = inputIsChannelMajor
        self.outputIsChannelMajor = outputIsChannelMajor
    }

    /// Both in the usual order.
    public static let nchw = ActivationLayout()
}

/// An architecture that cannot be built or does not fit its input or its weights.
public struct ArchitectureError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
