import DistillCore
import Foundation

/// A synthetic 3-class problem no linear classifier solves: the class is the ring (distance band
/// from the origin) a 2-D point falls in, with 6 uniform noise features appended (8 in all).
public func ringsDataset(count: Int, seed: UInt64) -> (x: [Float], y: [Int32]) {
    var generator = SeededGenerator(seed: seed)
    var x: [Float] = []
    var y: [Int32] = []
    for _ in 0..<count {
        let label = Int32(generator.next() % 3)
        let radius = Float(label) + 0.2 + 0.6 * generator.nextUniform()
        let angle = 2 * Float.pi * generator.nextUniform()
        x +=
            [radius * cosf(angle), radius * sinf(angle)]
            + (0..<6).map { _ in generator.nextUniform() - 0.5 }
        y.append(label)
    }
    return (x, y)
}

/// A new, empty directory under the system's temporary directory, removed when the test
/// process exits.
public func makeTemporaryDirectory(_ prefix: String = "distill-tests") throws -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    temporaryDirectoriesLock.withLock {
        if temporaryDirectories.isEmpty { atexit { removeTemporaryDirectories() } }
        temporaryDirectories.append(path)
    }
    return path
}

private let temporaryDirectoriesLock = NSLock()
nonisolated(unsafe) private var temporaryDirectories: [String] = []  // guarded by the lock

private func removeTemporaryDirectories() {
    for path in temporaryDirectoriesLock.withLock({ temporaryDirectories }) {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// An NPY 1.0 file's bytes for any dtype: `descr` such as "<f2" or ">f8", `data` the raw elements.
public func npyBytes(descr: String, shape: [Int], data: [UInt8]) -> [UInt8] {
    let shapeText =
        shape.count == 1
        ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    let length = header.utf8.count
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)]
        + Array(header.utf8) + data
}

/// Little- or big-endian bytes of float16 (exactly representable values only), float32 or float64 values.
public func elementBytes(_ values: [Double], size: Int, bigEndian: Bool = false) -> [UInt8] {
    values.flatMap { v -> [UInt8] in
        let bits: UInt64
        switch size {
        case 2:
            let f = Float(v)  // binary16 by hand for the normal numbers the tests use
            let b = f.bitPattern
            let exponent = Int((b >> 23) & 0xFF) - 127 + 15
            bits =
                f == 0
                ? 0
                : UInt64((b >> 16) & 0x8000) | UInt64(exponent << 10) | UInt64((b >> 13) & 0x3FF)
        case 4: bits = UInt64(Float(v).bitPattern)
        default: bits = v.bitPattern
        }
        let little = (0..<size).map { UInt8((bits >> (8 * UInt64($0))) & 0xFF) }
        return bigEndian ? little.reversed() : little
    }
}
