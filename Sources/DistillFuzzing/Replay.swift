import DistillCore

/// The bytes of a corpus file, for the replay mode of the fuzz targets.
public func replayBytes(_ path: String) throws -> [UInt8] {
    try readFileBytes(path)
}

/// The replay mode of a fuzz target built without libFuzzer: runs `entry` on each file named on
/// the command line and says whether the reader accepted it.
public func replayMain(_ entry: FuzzEntry) throws {
    for path in CommandLine.arguments.dropFirst() {
        print("\(path): \(entry.run(try replayBytes(path)) ? "accepted" : "refused")")
    }
}
