/// What a teacher gives for a batch of `rows x classes`, row-major.
public enum TeacherOutput {
    /// Logits; the soft targets are `softmax(t / T)`.
    case logits(UnsafeBufferPointer<Float>)
    /// Probabilities at T = 1 (each row non-negative with a positive sum; rows are renormalised).
    /// The soft targets are the power transform `p^(1/T) / sum p^(1/T)`, which equals
    /// `softmax(log p / T)`: what the logits would give at temperature T.
    case probabilities(UnsafeBufferPointer<Float>)
    /// Logits of several teachers; the soft targets are the arithmetic mean of the members'
    /// softened distributions, `(1/M) sum_m softmax(t_m / T)`.
    case ensembleLogits([UnsafeBufferPointer<Float>])
    /// A teacher's k most probable classes per row as log-probabilities at T = 1, `-inf` at the
    /// other classes: the missing mass is a "rest" bucket (see `restBucketLogTargets`). The hard
    /// objective takes the row's largest value.
    case topKLogProbabilities(UnsafeBufferPointer<Float>)
}
