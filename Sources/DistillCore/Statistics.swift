/// The summaries every printed result carries: the mean over seeds and its spread.
public enum Statistics {
    /// The arithmetic mean (0 for no values).
    public static func mean(_ x: [Double]) -> Double {
        x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count)
    }

    /// The sample standard deviation (n - 1 in the denominator; 0 for fewer than two values).
    public static func standardDeviation(_ x: [Double]) -> Double {
        guard x.count > 1 else { return 0 }
        let m = mean(x)
        return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
    }
}
