// Fuzz target for the gzip reader. `make fuzz` builds it with -sanitize=fuzzer,address and
// -DFUZZING (libFuzzer supplies main); built normally it replays the files given as arguments.
import DistillFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzEntry.gzip.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

#if !FUZZING
@main
enum Replay {
    static func main() throws {
        for path in CommandLine.arguments.dropFirst() {
            let accepted = FuzzEntry.gzip.run(try replayBytes(path))
            print("\(path): \(accepted ? "accepted" : "refused")")
        }
    }
}
#endif
