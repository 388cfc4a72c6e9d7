import XCTest

@testable import DistillCore

/// The small shared loops whose results every evaluation depends on.
final class VectorKernelTests: XCTestCase {
    /// Ties go to the first index (as `torch.argmax`), a NaN after the first value is passed over,
    /// an empty row is 0, and the array form counts from `start`.
    func testIndexOfMaximumTakesTheFirstLargest() {
        let values: [Float] = [0.5, -1, 3, 3, .nan, 2]
        values.withUnsafeBufferPointer { p in
            XCTAssertEqual(indexOfMaximum(p.baseAddress!, count: 6), 2)
            XCTAssertEqual(indexOfMaximum(p.baseAddress!, count: 2), 0)
            XCTAssertEqual(indexOfMaximum(p.baseAddress!, count: 0), 0)
            XCTAssertEqual(indexOfMaximum(p.baseAddress! + 3, count: 3), 0)
        }
        XCTAssertEqual(indexOfMaximum(values, start: 3, count: 3), 0)
        XCTAssertEqual(indexOfMaximum(values, start: 1, count: 5), 1)
        XCTAssertEqual(indexOfMaximum([-.infinity, -3, -2], start: 0, count: 3), 2)
    }
}
