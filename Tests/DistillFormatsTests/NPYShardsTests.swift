import DistillCore
import DistillFormats
import DistillTestSupport
import Foundation
import XCTest

final class NPYShardsTests: XCTestCase {
    /// Shards of float16, big-endian float64 and float32, read in name order as one matrix.
    func testShardsOfThreeTypesReadAsOneMatrixInNameOrder() throws {
        let dir = try makeTemporaryDirectory("distill-shards")
        let a: [Double] = [0.5, -2, 1.25, 3, 0, -0.75]  // exact in float16
        let b: [Double] = [0.1, 2.5e10, -7.125, 1]
        let c: [Double] = [4, 5, 6, 7, 8, 9]
        try Data(npyBytes(descr: "<f2", shape: [3, 2], data: elementBytes(a, size: 2))).write(
            to: URL(fileURLWithPath: dir + "/part-0.npy"))
        try Data(
            npyBytes(descr: ">f8", shape: [2, 2], data: elementBytes(b, size: 8, bigEndian: true))
        ).write(to: URL(fileURLWithPath: dir + "/part-1.npy"))
        try Data(npyBytes(descr: "<f4", shape: [3, 2], data: elementBytes(c, size: 4))).write(
            to: URL(fileURLWithPath: dir + "/part-2.npy"))
        // ignored: not .npy
        try Data("not a shard".utf8).write(to: URL(fileURLWithPath: dir + "/README.txt"))
        let shards = try NPYShards(dir)
        XCTAssertEqual(shards.rows, 8)
        XCTAssertEqual(shards.columns, 2)
        XCTAssertEqual(
            shards.paths.map { ($0 as NSString).lastPathComponent },
            ["part-0.npy", "part-1.npy", "part-2.npy"])
        var row = [Float](repeating: 0, count: 2)
        var all: [Float] = []
        for r in 0..<8 {
            row.withUnsafeMutableBufferPointer { shards.copyRow(r, to: $0.baseAddress!) }
            all += row
        }
        XCTAssertEqual(all, (a + b + c).map { Float($0) })
        // A single file works too.
        XCTAssertEqual(try NPYShards(dir + "/part-2.npy").rows, 3)
    }

    func testBadShardsAreNamed() throws {
        let dir = try makeTemporaryDirectory("distill-shards")
        XCTAssertThrowsError(try NPYShards(dir)) {
            XCTAssertTrue("\($0)".contains("no .npy files"), "\($0)")
        }
        try Data(
            npyBytes(descr: "<f4", shape: [2, 3], data: elementBytes([1, 2, 3, 4, 5, 6], size: 4))
        ).write(to: URL(fileURLWithPath: dir + "/a.npy"))
        try Data(npyBytes(descr: "<f4", shape: [1, 2], data: elementBytes([1, 2], size: 4))).write(
            to: URL(fileURLWithPath: dir + "/b.npy"))
        XCTAssertThrowsError(try NPYShards(dir)) {
            XCTAssertTrue("\($0)".contains("b.npy") && "\($0)".contains("2 columns"), "\($0)")
        }
        try Data(npyBytes(descr: "<i4", shape: [1, 3], data: elementBytes([0, 0, 0], size: 4)))
            .write(to: URL(fileURLWithPath: dir + "/b.npy"))
        XCTAssertThrowsError(try NPYShards(dir)) {
            XCTAssertTrue("\($0)".contains("b.npy") && "\($0)".contains("int32"), "\($0)")
        }
        try Data(npyBytes(descr: "<f4", shape: [3], data: elementBytes([0, 0, 0], size: 4))).write(
            to: URL(fileURLWithPath: dir + "/b.npy"))
        XCTAssertThrowsError(try NPYShards(dir)) { XCTAssertTrue("\($0)".contains("2-D"), "\($0)") }
        try Data(npyBytes(descr: "<f4", shape: [4, 3], data: elementBytes([0, 0, 0], size: 4)))
            .write(to: URL(fileURLWithPath: dir + "/b.npy"))
        XCTAssertThrowsError(try NPYShards(dir)) {
            XCTAssertTrue("\($0)".contains("b.npy"), "\($0)")
        }  // truncated
        XCTAssertThrowsError(try NPYShards(dir + "/missing.npy"))
    }
}

final class ProtobufWriterTests: XCTestCase {
    /// The wire format's own examples: 150 in field 1 is 08 96 01; "testing" in field 2 is
    /// 12 07 74 65 73 74 69 6e 67; -1 takes ten bytes; a float is fixed32 little-endian.
    func testWireFormatExamples() {
        var w = ProtobufWriter()
        w.int(1, 150)
        XCTAssertEqual(w.bytes, [0x08, 0x96, 0x01])
        w = ProtobufWriter()
        w.string(2, "testing")
        XCTAssertEqual(w.bytes, [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67])
        w = ProtobufWriter()
        w.int(3, -1)
        XCTAssertEqual(w.bytes, [0x18] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        w = ProtobufWriter()
        w.float(2, 1.0)
        XCTAssertEqual(w.bytes, [0x15, 0x00, 0x00, 0x80, 0x3F])
        w = ProtobufWriter()
        w.message(3) { $0.int(1, 150) }
        XCTAssertEqual(w.bytes, [0x1A, 0x03, 0x08, 0x96, 0x01])
    }
}
