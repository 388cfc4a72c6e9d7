import DistillCore
import XCTest

@testable import DistillFuzzing

/// The fuzz corpus (seed files and every input that once crashed, hung or tripped a sanitizer)
/// replayed through the readers as an ordinary test: each must return, accepted or refused.
final class CorpusTests: XCTestCase {
    func testEveryCorpusFileIsHandled() throws {
        let root = Bundle.module.resourcePath! + "/Corpus"
        var total = 0
        for entry in FuzzEntry.allCases {
            let directory = root + "/" + entry.rawValue
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            XCTAssertFalse(files.isEmpty, "no corpus for \(entry.rawValue)")
            var accepted = 0
            for file in files {
                if entry.run(try readFileBytes(directory + "/" + file)) { accepted += 1 }
                total += 1
            }
            XCTAssertGreaterThan(
                accepted, 0, "\(entry.rawValue): the seed corpus should hold valid inputs")
        }
        XCTAssertGreaterThan(total, 20)
    }
}
