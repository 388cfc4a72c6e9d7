import DistillTestSupport
import XCTest

@testable import DistillLosses

/// The loss, its terms and its gradient against NumPy float64 values
/// (Tests/Reference/losses_reference.py, output checked in as GoldenValues.swift).
/// Tolerance: rtol 2e-5 — the kernels compute in Float with Double sums, so a few ulps of the
/// inputs' scale (logits up to ~10) is the expected error.
final class GoldenValueTests: XCTestCase {
    /// Every case through the lane kernel (eight rows per vector, used for C <= 32) and through
    /// the row kernel (used for larger C).
    func testEveryGoldenCase() throws {
        XCTAssertEqual(goldenCases.count, 10)
        for golden in goldenCases {
            for lanes in [true, false] {
                var loss = try DistillationLoss(
                    temperature: golden.temperature, alpha: golden.alpha,
                    objective: DistillationLoss.Objective(rawValue: golden.objective)!,
                    ignoreLabel: golden.ignoreLabel)
                loss.usesLaneKernel = lanes
                var gradient = [Float](repeating: 0, count: golden.student.count)
                let value = try golden.student.withUnsafeBufferPointer { s in
                    try golden.teacher.withUnsafeBufferPointer { t in
                        try withMembers(golden.members) { members in
                            try gradient.withUnsafeMutableBufferPointer { g in
                                try withOptional(golden.labels) { y in
                                    try withOptional(golden.mask) { m in
                                        let teacher: TeacherOutput
                                        switch golden.teacherKind {
                                        case "probabilities": teacher = .probabilities(t)
                                        case "ensemble": teacher = .ensembleLogits(members)
                                        default: teacher = .logits(t)
                                        }
                                        return try loss.evaluate(
                                            studentLogits: s, teacher: teacher, labels: y, mask: m,
                                            rows: golden.rows, classes: golden.classes, gradient: g)
                                    }
                                }
                            }
                        }
                    }
                }
                assertClose(value.loss, golden.loss, rtol: 2e-5, atol: 1e-6, golden.name)
                assertClose(
                    value.divergence, golden.divergence, rtol: 2e-5, atol: 1e-6, golden.name)
                assertClose(value.softLoss, golden.softLoss, rtol: 2e-5, atol: 1e-6, golden.name)
                XCTAssertEqual(value.hardLoss == nil, golden.hardLoss == nil, golden.name)
                if let hard = value.hardLoss, let expected = golden.hardLoss {
                    assertClose(hard, expected, rtol: 2e-5, atol: 1e-6, golden.name)
                }
                assertClose(
                    gradient, golden.gradient, rtol: 2e-5, atol: 2e-7,
                    "\(golden.name) lanes \(lanes)")
            }
        }
    }
}

func withOptional<T, R>(_ array: [T]?, _ body: (UnsafeBufferPointer<T>?) throws -> R) rethrows -> R
{
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer { try body($0) }
}

func withMembers<R>(_ members: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R)
    rethrows -> R
{
    // Arrays of Float are kept alive by `members` for the duration of the call.
    var pointers: [UnsafeBufferPointer<Float>] = []
    var copies: [UnsafeMutableBufferPointer<Float>] = []
    defer { for copy in copies { copy.deallocate() } }
    for m in members {
        let copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: m.count)
        _ = copy.initialize(from: m)
        copies.append(copy)
        pointers.append(UnsafeBufferPointer(copy))
    }
    return try body(pointers)
}
