#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The machine's physical memory in bytes (pages times page size; 0 when the system will not say).
public func physicalMemoryBytes() -> Double {
    let pages = sysconf(Int32(_SC_PHYS_PAGES))
    let size = sysconf(Int32(_SC_PAGESIZE))
    return pages > 0 && size > 0 ? Double(pages) * Double(size) : 0
}

/// `bytes` for a person: "643 GB", "1.2 GB", "512 MB" (decimal units, one decimal below 10).
public func formatBytes(_ bytes: Double) -> String {
    let units = [(1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")]
    for (scale, name) in units where bytes >= scale {
        let value = bytes / scale
        return (value < 10 ? String(Double(Int(value * 10)) / 10) : String(Int(value.rounded())))
            + " " + name
    }
    return "\(Int(bytes)) bytes"
}
