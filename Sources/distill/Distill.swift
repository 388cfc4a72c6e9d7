import ArgumentParser
import DistillKit
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `distill` command: parses arguments and calls DistillKit; nothing else lives here.
struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract:
            "Knowledge distillation on the CPU: teach a small student the softened outputs of a large teacher.",
        discussion: """
            Errors in flags or files print one line on standard error and exit with status 2.
            """,
        subcommands: [
            Demo.self, Train.self, DistillCommand.self, SweepCommand.self, Eval.self, Predict.self,
            Generate.self,
            Logits.self, Inspect.self, Explain.self, Export.self, ImportTorch.self,
        ]
    )
}

/// Runs the command; any error (bad flag, bad file, bad number) becomes one line on stderr and
/// exit status 2. Help and version exit 0 as usual.
@main
enum Main {
    static func main() {
        BLASKernel.useBestSettings()
        FloatingPointMode.flushSubnormalsToZero()
        do {
            var command = try Distill.parseAsRoot()
            try command.run()
        } catch {
            if Distill.exitCode(for: error) == .success { Distill.exit(withError: error) }
            let message =
                Distill.message(for: error).split(separator: "\n").first.map(String.init)
                ?? "\(error)"
            printError("distill: \(message)")
            exit(2)
        }
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
}

/// A comma-separated list of numbers, e.g. `2.9,0.1,0.23`.
struct FloatList: ExpressibleByArgument {
    let values: [Float]
    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        var values: [Float] = []
        for p in parts {
            guard let v = Float(p.trimmingCharacters(in: " ")), v.isFinite else { return nil }
            values.append(v)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }

    var defaultValueDescription: String { values.map { "\($0)" }.joined(separator: ",") }
}

extension Substring {
    func trimmingCharacters(in c: Character) -> Substring {
        var s = self
        while s.first == c { s.removeFirst() }
        while s.last == c { s.removeLast() }
        return s
    }
}
