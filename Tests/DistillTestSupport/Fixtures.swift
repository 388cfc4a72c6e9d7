import DistillCore
import Foundation

/// A synthetic 3-class problem no linear classifier solves: the class is the ring (distance band
/// from the origin) a 2-D point falls in, with 6 uniform noise features appended (8 in all).
public func ringsDataset(count: Int, seed: UInt64) -> (x: [Float], y: [Int32]) {
    var generator = SeededGenerator(seed: seed)
    var x: [Float] = [], y: [Int32] = []
    for _ in 0..<count {
        let label = Int32(generator.next() % 3)
        let radius = Float(label) + 0.2 + 0.6 * generator.nextUniform()
        let angle = 2 * Float.pi * generator.nextUniform()
        x += [radius * cosf(angle), radius * sinf(angle)] + (0..<6).map { _ in generator.nextUniform() - 0.5 }
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
nonisolated(unsafe) private var temporaryDirectories: [String] = []   // guarded by the lock

private func removeTemporaryDirectories() {
    for path in temporaryDirectoriesLock.withLock({ temporaryDirectories }) { try? FileManager.default.removeItem(atPath: path) }
}
