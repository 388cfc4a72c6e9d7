import DistillKit
import DistillTestSupport
import XCTest

/// The commands on a directory of tagged sentences (CoNLL): train a teacher encoder, evaluate it,
/// save its per-word logits, distil a window tagger from them with few tags, predict a CoNLL file,
/// and refuse bad files.
final class TaggingCommandTests: XCTestCase {
    /// Sentences where a word after "mr" is a person (B-PER, and I-PER for a second name) and a
    /// city is a location: a rule of context as well as of words.
    static func corpus(sentences: Int, seed: UInt64, tags: Bool = true) -> String {
        var generator = SeededGenerator(seed: seed)
        func pick(_ words: [String]) -> String {
            words[Int(generator.next() % UInt64(words.count))]
        }
        let names = ["smith", "jones", "brown", "taylor", "wilson"]
        let cities = ["Paris", "London", "Berlin", "Rome"]
        let filler = ["the", "a", "met", "in", "visited", "said", "today", "near", "with"]
        var lines = ["-DOCSTART- O", ""]
        for _ in 0..<sentences {
            for _ in 0..<(3 + Int(generator.next() % 8)) {
                let roll = generator.next() % 10
                var pairs: [(String, String)]
                if roll < 2 {
                    pairs = [("mr", "O"), (pick(names), "B-PER")]
                    if generator.next() % 3 == 0 { pairs.append((pick(names), "I-PER")) }
                } else if roll < 4 {
                    pairs = [(pick(cities), "B-LOC")]
                } else {
                    pairs = [(pick(filler + names), "O")]
                }
                lines += pairs.map { tags ? "\($0.0) \($0.1)" : $0.0 }
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    func write(_ text: String, _ path: String) throws {
        try AtomicFile.write(text: text, to: path)
    }

    func testTrainEvaluateDistilAndPredictTags() throws {
        let dir = try makeTemporaryDirectory("distill-tagging-cli")
        try write(Self.corpus(sentences: 240, seed: 1), dir + "/train.conll")
        try write(Self.corpus(sentences: 60, seed: 2), dir + "/test.conll")
        let flags = [
            "--data", dir, "--steps", "120", "--batch-size", "16", "--lr", "0.01", "--quiet",
        ]
        let teacher = dir + "/teacher.safetensors"
        let train = try distill(
            [
                "train", "--arch", "encoder:layers=1,dim=16,heads=2,context=12,buckets=512",
                "--out", teacher, "--steps", "400",
            ] + flags.filter { $0 != "--steps" && $0 != "120" })
        XCTAssertEqual(train.status, 0, train.stderr)
        let loaded = try Model.load(from: teacher)
        XCTAssertEqual(loaded.tagNames, ["B-LOC", "B-PER", "I-PER", "O"])
        XCTAssertEqual(loaded.metadata["tag_scheme"], "BIO")
        let inspect = try distill(["inspect", teacher])
        XCTAssertTrue(inspect.stdout.contains("features:512:6:16: 8192 parameters"), inspect.stdout)
        let eval = try distill(["eval", "--model", teacher, "--data", dir, "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let figures = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        let f1 = try XCTUnwrap(figures["entity_f1"] as? Double)
        XCTAssertGreaterThan(f1, 0.6)  // a tagger that had learnt nothing would score about 0
        XCTAssertEqual(figures["accuracy"] as? Double, figures["token_accuracy"] as? Double)
        let perEntity = try XCTUnwrap(figures["per_entity"] as? [String: [String: Any]])
        XCTAssertEqual(Set(perEntity.keys), ["LOC", "PER"])
        let perTag = try XCTUnwrap(figures["per_tag"] as? [String: [String: Any]])
        XCTAssertEqual(Set(perTag.keys), ["B-LOC", "B-PER", "I-PER", "O"])
        for key in ["entity_precision", "entity_recall", "words_per_second"] {
            XCTAssertNotNil(figures[key] as? Double, key)
        }
        let table = try distill(["eval", "--model", teacher, "--data", dir])
        XCTAssertTrue(table.stdout.contains("weighted avg"), table.stdout)
        XCTAssertTrue(table.stdout.contains("entities (strict spans"), table.stdout)

        // One logits row per word of train.conll, in file order.
        let logits = dir + "/teacher.npy"
        XCTAssertEqual(
            try distill(["logits", "--model", teacher, "--data", dir, "--out", logits]).status, 0)
        let words = try CoNLLFile(path: dir + "/train.conll").sentences.reduce(0) {
            $0 + $1.words.count
        }
        XCTAssertEqual(try NPY.read(logits).shape, [words, 4])

        // A window tagger with the tags of 10 sentences, and the others as a transfer set.
        let student = dir + "/student.safetensors"
        let distilled = try distill(
            [
                "distill", "--arch", "window:dim=8,hidden=16,context=12,buckets=512",
                "--teacher-logits", logits, "--labelled", "10", "--temperature", "2", "--alpha",
                "0.7", "--out", student,
            ] + flags)
        XCTAssertEqual(distilled.status, 0, distilled.stderr)
        XCTAssertEqual(try Model.load(from: student).metadata["labelled_examples"], "10")
        let studentEval = try distill(["eval", "--model", student, "--data", dir, "--json"])
        let studentFigures = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(studentEval.stdout.utf8)) as? [String: Any])
        XCTAssertGreaterThan(try XCTUnwrap(studentFigures["entity_f1"] as? Double), 0.5)
        // From the teacher model itself, run on the same sentence pieces.
        let live = try distill(
            [
                "distill", "--arch", "window:dim=8,hidden=16,context=12,buckets=512",
                "--teacher", teacher, "--unlabelled", "--steps", "5", "--out",
                dir + "/live.safetensors",
            ] + flags.filter { $0 != "--steps" && $0 != "120" })
        XCTAssertEqual(live.status, 0, live.stderr)

        // A sweep: the teacher's logits cached once, each run scored by entity F1.
        let sweep = try distill([
            "sweep", "--data", dir, "--teacher", teacher, "--arch",
            "window:dim=8,hidden=16,context=12,buckets=512", "--temperatures", "2", "--alphas",
            "0.5", "--seeds", "1", "--labelled", "10", "--steps", "5", "--quiet", "--out",
            dir + "/sweep",
        ])
        XCTAssertEqual(sweep.status, 0, sweep.stderr)
        XCTAssertTrue(sweep.stdout.contains("test entity F1: distilled"), sweep.stdout)
        let csv = try String(contentsOfFile: dir + "/sweep/sweep.csv", encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 3)  // header, baseline, distilled

        // predict: the input's lines with the predicted tag appended; blank and -DOCSTART- kept.
        let predicted = dir + "/predicted.conll"
        let predict = try distill([
            "predict", "--model", teacher, "--input", dir + "/test.conll", "--format", "conll",
            "--out", predicted,
        ])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let input = try String(contentsOfFile: dir + "/test.conll", encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        let output = try String(contentsOfFile: predicted, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(input.count, output.count)
        var gold: [[String]] = [[]]
        var guessed: [[String]] = [[]]
        for (a, b) in zip(input, output) {
            if a.isEmpty || a.hasPrefix("-DOCSTART-") {
                XCTAssertEqual(a, b)
                if !gold[gold.count - 1].isEmpty { (gold, guessed) = (gold + [[]], guessed + [[]]) }
                continue
            }
            XCTAssertTrue(b.hasPrefix(a + " "), "\(b)")
            let columns = b.split(separator: " ")
            XCTAssertEqual(columns.count, 3)
            gold[gold.count - 1].append(String(columns[1]))
            guessed[guessed.count - 1].append(String(columns[2]))
        }
        // A tagger has no ONNX form: refused, nothing written.
        let export = try distill(["export", "--model", teacher, "--out", dir + "/t.onnx"])
        XCTAssertEqual(export.status, 2)
        XCTAssertTrue(export.stderr.contains("is a tagger"), export.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/t.onnx"))
        // The predicted file scores as eval does.
        let report = TagReport(
            gold: gold.filter { !$0.isEmpty }, predicted: guessed.filter { !$0.isEmpty }, bio: true)
        XCTAssertEqual(report.entities?.f1 ?? -1, f1, accuracy: 1e-12)
    }

    func testBadTaggingInputIsRefused() throws {
        let dir = try makeTemporaryDirectory("distill-tagging-bad")
        try write(Self.corpus(sentences: 20, seed: 3), dir + "/train.conll")
        try write("Paris B-LOC\nis O\n", dir + "/test.conll")
        let out = dir + "/model.safetensors"
        let arch = "window:dim=4,hidden=8,context=8,buckets=64"
        let base = [
            "train", "--arch", arch, "--data", dir, "--steps", "2", "--quiet", "--out", out,
        ]
        // A word line with a different number of columns than its sentence.
        try write("a O\nb B-LOC extra\n", dir + "/test.conll")
        var run = try distill(base)
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("test.conll: line 2: 3 columns"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        // A BIO tag without a type.
        try write("a O\nb I-\n", dir + "/test.conll")
        run = try distill(base)
        XCTAssertTrue(run.stderr.contains("test.conll: line 2: tag I- has no type"), run.stderr)
        // An empty file.
        try write("", dir + "/test.conll")
        run = try distill(base)
        XCTAssertTrue(run.stderr.contains("test.conll: empty file"), run.stderr)
        try write("Paris B-LOC\nis O\n", dir + "/test.conll")
        // Teacher logits with the wrong number of rows or classes.
        try NPY.write(floats: [Float](repeating: 0, count: 12), shape: [3, 4], to: dir + "/t.npy")
        run = try distill([
            "distill", "--arch", arch, "--data", dir, "--teacher-logits", dir + "/t.npy",
            "--steps", "2", "--quiet", "--out", out,
        ])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("t.npy: teacher logits are [3, 4]"), run.stderr)
        XCTAssertTrue(run.stderr.contains("train.conll and unlabelled.conll"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        // An image architecture for sentences.
        run = try distill(["train", "--arch", "mlp:8", "--data", dir, "--steps", "2", "--out", out])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("tagged sentences need a tagger"), run.stderr)
    }
}
