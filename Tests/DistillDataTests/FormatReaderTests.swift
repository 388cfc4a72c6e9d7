import DistillCore
import DistillTestSupport
import XCTest

@testable import DistillFormats

let fixtures = Bundle.module.resourcePath! + "/Fixtures"

final class NPYTests: XCTestCase {
    /// Every array NumPy wrote (Tests/Reference/make_data_fixtures.py) reads back with its shape,
    /// type and values as listed in fixtures.txt: each dtype, versions 1.0 to 3.0, big-endian,
    /// 0-d and empty.
    func testReadsWhatNumPyWrote() throws {
        let listing = try String(contentsOfFile: fixtures + "/fixtures.txt", encoding: .utf8)
        var checked = 0
        for line in listing.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(
                String.init)
            let (name, descr) = (fields[0], fields[1])
            if name == "fortran.npy" { continue }
            let shape = fields[2].isEmpty ? [] : fields[2].split(separator: ",").map { Int($0)! }
            let array = try NPY.read(fixtures + "/" + name)
            XCTAssertEqual(array.shape, shape, name)
            XCTAssertEqual(array.type.rawValue, String(descr.dropFirst()), name)
            XCTAssertEqual(array.bigEndian, descr.hasPrefix(">"), name)
            if descr.contains("f") {
                let expected = fields[3].split(separator: " ").map { Double($0)! }
                XCTAssertEqual(array.floats(), expected.map { Float($0) }, name)
            } else {
                let expected = fields[3].split(separator: " ").map { Int64($0)! }
                XCTAssertEqual(try array.integers(), expected, name)  // exact, 2^53 + 1 included
            }
            checked += 1
        }
        XCTAssertEqual(checked, 11)
    }

    func testRefusesFortranOrderWithAClearMessage() {
        XCTAssertThrowsError(try NPY.read(fixtures + "/fortran.npy")) {
            XCTAssertTrue("\($0)".contains("Fortran order"), "\($0)")
            XCTAssertTrue("\($0)".contains("fortran.npy"), "\($0)")
        }
    }

    /// What we write is byte for byte what `numpy.save` writes for the same array, so NumPy reads it.
    func testWritesExactlyWhatNumPyWrites() throws {
        let dir = try makeTemporaryDirectory("distill-data")
        try NPY.write(
            floats: [1.5, -2.25, 3.0, 0.0, 0.001, -7.5], shape: [2, 3], to: dir + "/f4.npy")
        XCTAssertEqual(try readFileBytes(dir + "/f4.npy"), try readFileBytes(fixtures + "/f4.npy"))
        try NPY.write(int64: [5, -6, 9_007_199_254_740_993], shape: [3], to: dir + "/i8.npy")
        XCTAssertEqual(try readFileBytes(dir + "/i8.npy"), try readFileBytes(fixtures + "/i8.npy"))
        try NPY.write(floats: [], shape: [0, 3], to: dir + "/empty.npy")
        XCTAssertEqual(
            try readFileBytes(dir + "/empty.npy"), try readFileBytes(fixtures + "/empty.npy"))
        // And round trips.
        let values = fixtureValues(1000, seed: 3, scale: 1e6)
        try NPY.write(floats: values, shape: [10, 100], to: dir + "/r.npy")
        XCTAssertEqual(try NPY.read(dir + "/r.npy").floats(), values)
    }

    func testRejectsCorruptAndLyingFiles() throws {
        let good = try readFileBytes(fixtures + "/f4.npy")
        func header(_ dict: String, version: UInt8 = 1) -> [UInt8] {
            var text = Array(dict.utf8)
            while (10 + text.count + 1) % 64 != 0 { text.append(0x20) }
            text.append(0x0A)
            return NPY.magic + [version, 0, UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text
        }
        let cases: [(String, [UInt8], String)] = [
            ("empty file", [], "bad magic"),
            ("bad magic", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x58] + Array(good[6...]), "bad magic"),
            (
                "version 9", Array(good[0..<6]) + [9, 0] + Array(good[8...]),
                "unsupported format version 9.0"
            ),
            (
                "header past end", Array(good[0..<8]) + [0xFF, 0xFF] + Array(good[10..<40]),
                "exceeds the file size"
            ),
            ("truncated data", Array(good[0..<(good.count - 3)]), "the file has 21 bytes of data"),
            ("extra data", good + [0, 0, 0, 0], "the file has 28 bytes of data"),
            (
                "unsupported dtype",
                header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }")
                    + [UInt8](repeating: 0, count: 8), "dtype '<c8' is not supported"
            ),
            (
                "lying shape 10^12",
                header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }")
                    + [0, 0, 0, 0], "more data than the file holds"
            ),
            (
                "overflowing shape",
                header(
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"),
                "more data than the file holds"
            ),
            ("no shape", header("{'descr': '<f4', 'fortran_order': False, }"), "no 'shape'"),
            ("garbage header", header("{'descr': <f4 }"), "cannot parse the header"),
        ]
        for (name, bytes, expected) in cases {
            XCTAssertThrowsError(try NPY.parse(bytes, path: "x.npy"), name) {
                XCTAssertTrue("\($0)".hasPrefix("x.npy: "), "\(name): \($0)")
                XCTAssertTrue(
                    "\($0)".contains(expected), "\(name): '\($0)' should mention '\(expected)'")
            }
        }
        // floats are not labels
        XCTAssertThrowsError(try NPY.read(fixtures + "/f4.npy").integers())
    }
}

final class IDXTests: XCTestCase {
    func testRawAndGzipRoundTrip() throws {
        let dir = try makeTemporaryDirectory("distill-data")
        let bytes = (0..<60).map { UInt8($0 * 4) }
        try IDX.write(bytes, shape: [3, 5, 4], to: dir + "/a.idx")
        XCTAssertEqual(try IDX.read(dir + "/a.idx"), IDX.NDArray(shape: [3, 5, 4], bytes: bytes))
        let gz = try readFileBytes(fixtures + "/mnist/train-images-idx3-ubyte.gz")
        let parsed = try IDX.parse(gz, path: "train.gz")
        XCTAssertEqual(parsed.shape, [6, 5, 4])
        let expected = try NPY.read(fixtures + "/mnist/train_expected_images.npy").integers().map {
            UInt8($0)
        }
        XCTAssertEqual(parsed.bytes, expected)
    }

    func testRejectsCorruptLyingAndCompressedGarbage() throws {
        var raw: [UInt8] = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3] + [1, 2, 3, 4, 5, 6]
        XCTAssertNoThrow(try IDX.parse(raw, path: "ok"))
        let gz = try readFileBytes(fixtures + "/mnist/train-images-idx3-ubyte.gz")
        var badMagic = raw
        badMagic[0] = 7
        var floatType = raw
        floatType[2] = 0x0D
        var lying = raw
        lying[4] = 0x7F  // first dimension ~2^31: 10^12-scale claim
        raw.removeLast()
        var gzGarbage = gz
        for i in 20..<40 { gzGarbage[i] ^= 0x5A }
        let cases: [(String, [UInt8], String)] = [
            ("truncated raw", raw, "declares 6 bytes of data"),
            ("short header", [0, 0, 8, 3, 0, 0], "too short for its header"),
            ("bad magic", badMagic, "bad magic number 07 00 08 02"),
            ("float type", floatType, "0xd (float) is not supported"),
            ("lying header", lying, "more data than the file can hold"),
            ("truncated gzip", Array(gz[0..<(gz.count / 2)]), "truncated"),
            ("gzip garbage", gzGarbage, "gzip"),
            ("gzip with trailing member", gz + gz, "more bytes than the header declares"),
        ]
        for (name, bytes, expected) in cases {
            XCTAssertThrowsError(try IDX.parse(bytes, path: "f.idx"), name) {
                XCTAssertTrue("\($0)".hasPrefix("f.idx: "), "\(name): \($0)")
                XCTAssertTrue(
                    "\($0)".contains(expected), "\(name): '\($0)' should mention '\(expected)'")
            }
        }
    }
}
