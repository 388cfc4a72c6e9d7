#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CTKD's learnable temperature: `T = 1 + 20 sigmoid(theta)`, in (1, 21), trained *against* the
/// student through a gradient-reversal layer: the student descends the distillation loss while
/// `theta` ascends it, by `theta += lr * lambda * alpha * d(T^2 KL)/dT * dT/dtheta`. The reversal
/// weight `lambda` follows a cosine curriculum, `lambda(k) = (1 - cos(pi min(1, 2k/K))) / 2`: 0 at
/// the start (an easy, fixed temperature), 1 from the middle of the run of K steps on (the hardest
/// temperature for the student). `theta` starts at 0 (T = 11).
///
/// Reference: Z. Li, X. Li, L. Yang, B. Zhao, R. Song, L. Luo, J. Li, J. Yang, "Curriculum
/// Temperature for Knowledge Distillation", AAAI 2023 (global temperature).
public struct AdaptiveTemperature: Sendable, Equatable {
    public var theta: Double
    public let learningRate: Double

    public init(theta: Double = 0, learningRate: Double) {
        self.theta = theta
        self.learningRate = learningRate
    }

    public var temperature: Float { Float(1 + 20 / (1 + exp(-theta))) }

    /// The reversal weight at step `step` of `totalSteps`.
    public static func lambda(at step: Int, of totalSteps: Int) -> Double {
        let progress = min(1, 2 * Double(step) / Double(max(totalSteps, 1)))
        return (1 - cos(Double.pi * progress)) / 2
    }

    /// One reversed-gradient step from `softGradient = d(T^2 KL)/dT` on the batch.
    public mutating func update(softGradient: Double, alpha: Double, step: Int, of totalSteps: Int)
    {
        let sigma = 1 / (1 + exp(-theta))
        let dTdTheta = 20 * sigma * (1 - sigma)
        theta +=
            learningRate * AdaptiveTemperature.lambda(at: step, of: totalSteps) * alpha
            * softGradient * dTdTheta
    }
}
