import DistillCore

/// The bytes of a corpus file, for the replay mode of the fuzz targets.
public func replayBytes(_ path: String) throws -> [UInt8] {
    try readFileBytes(path)
}
