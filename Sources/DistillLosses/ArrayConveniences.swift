extension DistillationLoss {
    /// The loss and gradient for arrays: a convenience over `evaluate(studentLogits:teacher:...)`
    /// for small examples and tests. Labels use `noLabel` (-1) for rows without one.
    public func evaluate(
        studentLogits: [Float], teacherLogits: [Float], labels: [Int]?,
        classes: Int
    ) throws -> (value: DistillationLossValue, gradient: [Float]) {
        let rows = classes > 0 ? studentLogits.count / classes : 0
        var gradient = [Float](repeating: 0, count: studentLogits.count)
        let labels32 = labels.map { $0.map { Int32(clamping: $0) } }
        let value = try studentLogits.withUnsafeBufferPointer { s in
            try teacherLogits.withUnsafeBufferPointer { t in
                try gradient.withUnsafeMutableBufferPointer { g in
                    try withOptionalBuffer(labels32) { y in
                        try evaluate(
                            studentLogits: s, teacher: .logits(t), labels: y, rows: rows,
                            classes: classes, gradient: g)
                    }
                }
            }
        }
        return (value, gradient)
    }
}

/// Softmax with temperature of one row of logits (a convenience for small examples).
public func softmax(logits: [Float], temperature: Float = 1) throws -> [Float] {
    var out = [Float](repeating: 0, count: logits.count)
    try logits.withUnsafeBufferPointer { z in
        try out.withUnsafeMutableBufferPointer { p in
            try softmax(
                logits: z, rows: 1, classes: logits.count, temperature: temperature, into: p)
        }
    }
    return out
}

func withOptionalBuffer<T, R>(_ array: [T]?, _ body: (UnsafeBufferPointer<T>?) throws -> R) rethrows
    -> R
{
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer { try body($0) }
}
