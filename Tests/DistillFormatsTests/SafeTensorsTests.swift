import DistillCore
import DistillTestSupport
import XCTest

@testable import DistillFormats

/// Builds a safetensors file from a header given as text and `dataBytes` bytes of data.
func safetensorsBytes(header: String, dataBytes: Int) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = (0..<8).map { UInt8((UInt64(h.count) >> (8 * UInt64($0))) & 0xFF) }
    out += h
    out += [UInt8](repeating: 0, count: dataBytes)
    return out
}

final class SafeTensorsTests: XCTestCase {
    func testRoundTripIsBitExactAndDeterministic() throws {
        let dir = try makeTemporaryDirectory()
        let a = Tensor(
            shape: [2, 3], values: [1, -0.0, .leastNonzeroMagnitude, 3.4e38, -1e-30, 0.1])
        let b = Tensor(shape: [4], values: [5, 6, 7, 8])
        let path = dir + "/m.safetensors"
        try SafeTensors.write(
            [
                .init(name: "layers.0.weight", shape: [2, 3], values: a),
                .init(name: "layers.0.bias", shape: [4], values: b),
            ],
            metadata: ["k\"ey": "va\\lue\n", "classes": "10"], to: path)
        let file = try SafeTensors.read(path)
        XCTAssertEqual(file.metadata, ["k\"ey": "va\\lue\n", "classes": "10"])
        XCTAssertEqual(file.entries.map(\.name), ["layers.0.weight", "layers.0.bias"])
        XCTAssertEqual(
            try file.floats("layers.0.weight").map(\.bitPattern), a.values.map(\.bitPattern))
        XCTAssertEqual(try file.floats("layers.0.bias"), [5, 6, 7, 8])
        // Header padded to 8 bytes; the same inputs give the same bytes.
        let bytes = try readFileBytes(path)
        XCTAssertEqual((Int(bytes[0]) + 8) % 8, 0)
        try SafeTensors.write(
            [
                .init(name: "layers.0.weight", shape: [2, 3], values: a),
                .init(name: "layers.0.bias", shape: [4], values: b),
            ],
            metadata: ["classes": "10", "k\"ey": "va\\lue\n"], to: dir + "/again.safetensors")
        XCTAssertEqual(try readFileBytes(dir + "/again.safetensors"), bytes)
    }

    /// Half, bfloat16 and double tensors as other tools write them convert to Float.
    func testReadsOtherFloatTypes() throws {
        // F16 1.0 = 0x3C00, -2.0 = 0xC000; BF16 1.5 = 0x3FC0; F64 0.25.
        var bytes = safetensorsBytes(
            header:
                #"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},"d":{"dtype":"F64","shape":[1],"data_offsets":[6,14]}}"#,
            dataBytes: 14)
        let start = bytes.count - 14
        bytes.replaceSubrange(
            start..<(start + 14),
            with: [0x00, 0x3C, 0x00, 0xC0, 0xC0, 0x3F]
                + withUnsafeBytes(of: (0.25 as Double).bitPattern.littleEndian, Array.init))
        let file = try SafeTensorsFile(bytes: bytes, path: "x.safetensors")
        XCTAssertEqual(try file.floats("h"), [1, -2])
        XCTAssertEqual(try file.floats("b"), [1.5])
        XCTAssertEqual(try file.floats("d"), [0.25])
        XCTAssertEqual(Float(halfBits: 0x0001), 0x1p-24)
        XCTAssertEqual(Float(halfBits: 0x7C00), .infinity)
    }

    /// Every malformed file is refused with an error naming the file and the problem.
    func testRejectsMalformedFiles() {
        let valid = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let cases: [(String, [UInt8], String)] = [
            ("too short", [1, 2, 3], "too short"),
            ("length past end", [255, 255, 0, 0, 0, 0, 0, 0, 123], "exceeds the file size"),
            ("huge length", [255, 255, 255, 255, 255, 255, 255, 255], "exceeds the limit"),
            ("not json", safetensorsBytes(header: "{not json}", dataBytes: 0), "not valid JSON"),
            (
                "not object start", safetensorsBytes(header: "[1,2]", dataBytes: 0),
                "does not start with '{'"
            ),
            (
                "bad dtype",
                safetensorsBytes(
                    header: #"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8),
                "unknown dtype"
            ),
            (
                "bad shape",
                safetensorsBytes(
                    header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
                    dataBytes: 8), "no valid shape"
            ),
            (
                "size mismatch",
                safetensorsBytes(
                    header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8
                ), "needs 12 bytes"
            ),
            ("offsets past end", safetensorsBytes(header: valid, dataBytes: 4), "past the end"),
            (
                "reversed offsets",
                safetensorsBytes(
                    header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, dataBytes: 8
                ), "no valid data_offsets"
            ),
            (
                "gap",
                safetensorsBytes(
                    header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8
                ), "gap"
            ),
            (
                "overlap",
                safetensorsBytes(
                    header:
                        #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    dataBytes: 8), "overlaps"
            ),
            ("trailing bytes", safetensorsBytes(header: valid, dataBytes: 12), "cover 8"),
            (
                "overflowing shape",
                safetensorsBytes(
                    header:
                        #"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}"#,
                    dataBytes: 8), "too large"
            ),
            (
                "metadata not strings",
                safetensorsBytes(header: #"{"__metadata__":{"a":1}}"#, dataBytes: 0), "not a string"
            ),
        ]
        for (name, bytes, expected) in cases {
            XCTAssertThrowsError(try SafeTensorsFile(bytes: bytes, path: "bad.safetensors"), name) {
                error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("bad.safetensors: "), "\(name): \(text)")
                XCTAssertTrue(
                    text.contains(expected), "\(name): '\(text)' should mention '\(expected)'")
            }
        }
        XCTAssertNoThrow(
            try SafeTensorsFile(bytes: safetensorsBytes(header: valid, dataBytes: 8), path: "ok"))
    }

    /// A write into a missing directory fails with the path named; a failed write leaves nothing.
    func testAtomicWrites() throws {
        let dir = try makeTemporaryDirectory()
        XCTAssertThrowsError(try AtomicFile.write([1, 2, 3], to: dir + "/missing/x.bin")) {
            XCTAssertTrue("\($0)".contains("does not exist"))
        }
        struct Boom: Error {}
        XCTAssertThrowsError(
            try AtomicFile.write(to: dir + "/y.bin") { fd in
                try AtomicFile.writeAll(fd, UnsafeRawBufferPointer(start: nil, count: 0), path: "y")
                throw Boom()
            })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        try AtomicFile.write([9, 8], to: dir + "/z.bin")
        XCTAssertEqual(try readFileBytes(dir + "/z.bin"), [9, 8])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["z.bin"])
    }
}
