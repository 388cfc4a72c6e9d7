import XCTest

/// Asserts `|actual - expected| <= atol + rtol * |expected|` element by element, reporting the
/// worst element. File and line are forwarded so failures point at the caller.
public func assertClose<A: BinaryFloatingPoint, E: BinaryFloatingPoint>(
    _ actual: [A], _ expected: [E], rtol: Double = 1e-5, atol: Double = 1e-6,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("count \(actual.count) != \(expected.count) \(message())", file: file, line: line)
        return
    }
    var worst = -1
    var worstExcess = 0.0
    for i in actual.indices {
        let a = Double(actual[i])
        let e = Double(expected[i])
        let excess = abs(a - e) - (atol + rtol * abs(e))
        if !(excess <= 0) && (worst < 0 || !(excess <= worstExcess)) {
            worst = i
            worstExcess = excess
        }
    }
    if worst >= 0 {
        XCTFail(
            "element \(worst): \(actual[worst]) vs expected \(expected[worst]) (rtol \(rtol), atol \(atol)) \(message())",
            file: file, line: line)
    }
}

/// Asserts the two arrays are equal bit for bit, reporting the first element that differs and how
/// many do (not the whole arrays).
public func assertIdentical(
    _ actual: [Float], _ expected: [Float], _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("count \(actual.count) != \(expected.count) \(message())", file: file, line: line)
        return
    }
    let differing = actual.indices.filter { actual[$0].bitPattern != expected[$0].bitPattern }
    if let first = differing.first {
        XCTFail(
            "\(differing.count) of \(actual.count) elements differ; first, element \(first): \(actual[first]) vs expected \(expected[first]) \(message())",
            file: file, line: line)
    }
}

/// Scalar form of `assertClose`.
public func assertClose<A: BinaryFloatingPoint, E: BinaryFloatingPoint>(
    _ actual: A, _ expected: E, rtol: Double = 1e-5, atol: Double = 1e-6,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose([actual], [expected], rtol: rtol, atol: atol, message(), file: file, line: line)
}

/// Central finite differences of a scalar function: `(f(x + h e_i) - f(x - h e_i)) / 2h` for each i.
///
/// `f` is evaluated at Float inputs (the precision the code under test runs in) and returns a
/// Double, so callers accumulate their objective in Double. With Float inputs the perturbation is
/// rounded; the step actually taken, `(x + h) - (x - h)` in Float, is used as the divisor.
public func centralDifferences(_ x: [Float], step h: Float, _ f: ([Float]) throws -> Double)
    rethrows -> [Double]
{
    var grad = [Double](repeating: 0, count: x.count)
    var probe = x
    for i in x.indices {
        let plus = x[i] + h
        let minus = x[i] - h
        probe[i] = plus
        let fPlus = try f(probe)
        probe[i] = minus
        let fMinus = try f(probe)
        probe[i] = x[i]
        grad[i] = (fPlus - fMinus) / Double(plus - minus)
    }
    return grad
}

/// Deterministic pseudo-random Floats in [-scale, scale) for fixtures (a 64-bit LCG: fixtures do
/// not depend on the library's generator, so a change there cannot hide a bug here).
public func fixtureValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (Float(state >> 40) * 0x1p-24 * 2 - 1) * scale
    }
}
