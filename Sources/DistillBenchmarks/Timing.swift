import DistillCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Seconds per call of `body`, timed over `repetitions` calls.
func secondsPerCall(_ repetitions: Int, _ body: () throws -> Void) rethrows -> Double {
    let start = monotonicSeconds()
    for _ in 0..<repetitions { try body() }
    return (monotonicSeconds() - start) / Double(repetitions)
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// CPU time the hypervisor has given to other guests while this machine's processors wanted to
/// run ("steal", the eighth figure of /proc/stat's `cpu` line), in seconds summed over processors;
/// nil where there is no /proc/stat (macOS). A benchmark case that saw steal ran on a busy host.
func stolenSeconds() -> Double? {
    guard let file = fopen("/proc/stat", "r") else { return nil }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 512)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
    let line = String(
        decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let fields = line.split(separator: " ")
    guard fields.first == "cpu", fields.count > 8, let ticks = Double(fields[8]) else { return nil }
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Peak resident set size of this process, in megabytes.
func peakResidentMegabytes() -> Int {
    var usage = rusage()
    #if canImport(Darwin)
    getrusage(RUSAGE_SELF, &usage)
    return Int(usage.ru_maxrss) / (1024 * 1024)
    #else
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) / 1024
    #endif
}

func format(_ x: Double, _ digits: Int = 2) -> String {
    let p = pow(10.0, Double(digits))
    let r = (x * p).rounded() / p
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else if digits > 0 {
        s += "." + String(repeating: "0", count: digits)
    }
    return s
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}
