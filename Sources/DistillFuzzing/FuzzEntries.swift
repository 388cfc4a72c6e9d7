import DistillCore
import DistillFormats
import DistillNN

/// The entry points of the fuzz targets (`make fuzz`) and of the regression test that replays
/// their corpus. Each hands arbitrary bytes to one reader; a reader may refuse them with an error,
/// but must not crash, hang or allocate beyond what the bytes justify.
public enum FuzzEntry: String, CaseIterable, Sendable {
    case idx, gzip, npy, safetensors, architecture

    /// Feeds `bytes` to the reader. Returns true when the reader accepted them.
    @discardableResult
    public func run(_ bytes: [UInt8]) -> Bool {
        switch self {
        case .idx:
            return (try? IDX.parse(bytes, path: "fuzz.idx")) != nil
        case .gzip:
            // Gzip through IDX: the fuzzer's bytes become the body of a gzip member.
            let wrapped = GzipReader.isGzip(bytes) ? bytes : [0x1F, 0x8B] + bytes
            return (try? IDX.parse(wrapped, path: "fuzz.idx.gz")) != nil
        case .npy:
            guard let array = try? NPY.parse(bytes, path: "fuzz.npy") else { return false }
            _ = array.floats()
            _ = try? array.integers()
            return true
        case .safetensors:
            guard let file = try? SafeTensorsFile(bytes: bytes, path: "fuzz.safetensors") else {
                return false
            }
            for entry in file.entries { _ = try? file.floats(entry.name) }
            return true
        case .architecture:
            guard let text = String(validating: bytes, as: UTF8.self),
                let spec = try? ArchitectureSpec(parsing: text)
            else { return false }
            var generator = SeededGenerator(seed: 0)
            // Small inputs only: the grammar allows layers of up to 2^20 units.
            guard spec.hiddenSizes.allSatisfy({ $0 <= 64 }),
                spec.convolutionChannels.allSatisfy({ $0 <= 8 }),
                spec.hiddenSizes.count + spec.convolutionChannels.count <= 6
            else { return true }
            _ = try? spec.build(inputShape: [1, 8, 8], classes: 3, generator: &generator)
            return true
        }
    }
}
