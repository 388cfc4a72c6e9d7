// Fuzz target for the architecture reader (see scripts/fuzz). Built by `make fuzz` with
// -sanitize=fuzzer,address and -DFUZZING, libFuzzer supplies main; built normally, it replays the
// files given as arguments.
import DistillFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzEntry.architecture.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

#if !FUZZING
@main enum Replay { static func main() throws { try replayMain(.architecture) } }
#endif
