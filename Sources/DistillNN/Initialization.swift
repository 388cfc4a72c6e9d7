import DistillCore

/// How a layer's initial weights are drawn (biases start at zero).
public enum Initialization: String, Sendable, CaseIterable {
    /// He (Kaiming) uniform, `U(-sqrt(6 / fanIn), sqrt(6 / fanIn))`, for layers followed by a
    /// ReLU. K. He et al., "Delving Deep into Rectifiers", ICCV 2015.
    case he
    /// Glorot (Xavier) uniform, `U(-sqrt(6 / (fanIn + fanOut)), +...)`, for the output layer.
    /// X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward neural
    /// networks", AISTATS 2010.
    case glorot

    /// A tensor of `shape` drawn from `generator`.
    public func tensor(shape: [Int], fanIn: Int, fanOut: Int, generator: inout SeededGenerator)
        -> Tensor
    {
        let bound: Float
        switch self {
        case .he: bound = (6 / Float(max(fanIn, 1))).squareRoot()
        case .glorot: bound = (6 / Float(max(fanIn + fanOut, 1))).squareRoot()
        }
        let t = Tensor(zeros: shape)
        guard Initialization.drawsWeights else { return t }
        for i in 0..<t.count { t[i] = (generator.nextUniform() * 2 - 1) * bound }
        return t
    }

    /// Whether layers draw their initial weights: false while `Model.replica()` builds a copy
    /// whose values it replaces by the model's (the weights stay zeros, nothing is drawn), which
    /// spares drawing millions of values each time a split makes a replica.
    @TaskLocal static var drawsWeights = true

    /// Fills `t` with `scale * N(0, 1)` drawn from `generator`, when weights are drawn.
    static func fillNormal(_ t: Tensor, scale: Float, generator: inout SeededGenerator) {
        guard drawsWeights else { return }
        for i in 0..<t.count { t[i] = scale * generator.nextNormal() }
    }
}
