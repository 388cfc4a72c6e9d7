import DistillCore
import DistillLosses
import DistillNN
import DistillTestSupport
import XCTest

@testable import DistillData
@testable import DistillTraining

/// Taggers trained and scored: predictions from logits, the tags a model does not know, a
/// distillation step whose padded rows count for nothing, and a trainer that learns a rule.
final class TaggingTrainingTests: XCTestCase {
    func testFeatureTableSizesAgree() {
        XCTAssertEqual(WordFeatures.slots, ArchitectureSpec.wordFeatureSlots)
        XCTAssertEqual(WordFeatures.buckets, ArchitectureSpec.wordFeatureBuckets)
    }

    func testEvaluationTakesTheArgmaxAndReportsUnseenTags() {
        let sentences = TaggedSentences(
            sentences: [
                CoNLLFile.Sentence(words: ["a", "b"], tags: ["B-X", "O"], lines: [1, 2]),
                CoNLLFile.Sentence(words: ["c"], tags: nil, lines: [4]),
                CoNLLFile.Sentence(words: ["d"], tags: ["B-Y"], lines: [6]),
            ], firstRows: [0, 2, 3])
        // Tags B-X, O; rows a: B-X, b: B-X, c: O, d: O.
        let logits: [Float] = [2, 1, 3, 0, 0, 1, -1, 4]
        let e = TaggingEvaluation(
            logits: logits, tags: ["B-X", "O"], sentences: sentences, bio: true)
        XCTAssertEqual(e.predicted, [["B-X", "B-X"], ["O"], ["O"]])
        XCTAssertEqual(e.words, 3)  // the unlabelled sentence is not scored
        XCTAssertEqual(e.report.tokenAccuracy, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(e.unseenTags.map(\.tag), ["B-Y"])
        // Entities: gold X(0,0), Y(0,0 of sentence 3); predicted X(0,0), X(1,1): 1 of 2 right.
        XCTAssertEqual(e.report.entities?.precision ?? -1, 0.5, accuracy: 1e-12)
        XCTAssertEqual(e.report.entities?.recall ?? -1, 0.5, accuracy: 1e-12)
        XCTAssertEqual(e.validationScore, 0.5, accuracy: 1e-12)
    }

    /// docs/distillation.md's worked example: a labelled word, an unlabelled word and a padded row
    /// (values from the formulas, in Python's float64: 0.2745773 soft, 0.3132617 hard, 0.2939195).
    func testWorkedExampleOfTheDocs() throws {
        let student: [Float] = [1, 0, 0, 0, 5, -5]
        let teacher: [Float] = [2, 0, 0, 2, -3, 3]
        let labels: [Int32] = [0, -1, -1]
        let mask = [true, true, false]
        var gradient = [Float](repeating: 1, count: 6)
        let loss = try DistillationLoss(temperature: 2, alpha: 0.5)
        let value = try student.withUnsafeBufferPointer { s in
            try teacher.withUnsafeBufferPointer { t in
                try labels.withUnsafeBufferPointer { y in
                    try mask.withUnsafeBufferPointer { m in
                        try gradient.withUnsafeMutableBufferPointer { g in
                            try loss.evaluate(
                                studentLogits: s, teacher: .logits(t), labels: y, mask: m,
                                rows: 3, classes: 2, gradient: g)
                        }
                    }
                }
            }
        }
        XCTAssertEqual(Double(value.softLoss), 0.2745773, accuracy: 1e-6)
        XCTAssertEqual(Double(value.hardLoss ?? 0), 0.3132617, accuracy: 1e-6)
        XCTAssertEqual(Double(value.loss), 0.2939195, accuracy: 1e-6)
        XCTAssertEqual(Array(gradient[4...5]), [0, 0])
    }

    /// The step's mask: the gradient at padded rows is zero and the loss is the loss of the real
    /// rows alone.
    func testDistillationStepIgnoresMaskedRows() throws {
        var generator = SeededGenerator(seed: 5)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "window:radius=1,dim=4,hidden=6,context=3"),
            inputShape: [3, 6], classes: 3, generator: &generator)
        let sentences = TaggedSentences(
            sentences: [CoNLLFile.Sentence(words: ["x", "y"], tags: ["A", "B"], lines: [1, 2])],
            firstRows: [0])
        let teacher = TeacherRows.values(fixtureValues(6, seed: 2, scale: 2), width: 3)
        let batches = try TaggedBatches(
            sentences: sentences, tags: ["A", "B", "C"], context: 3, batchSize: 1, seed: 0,
            shuffle: false, teacherRows: teacher)
        batches.start(epoch: 0)
        let batch = try XCTUnwrap(batches.next())
        let loss = try DistillationLoss(temperature: 2, alpha: 0.5)
        let logits = model.forward(batch.inputs, mode: .inference).values
        let teacherValues = batch.teacher!.values
        var gradient = [Float](repeating: 1, count: 9)
        let masked = try logits.withUnsafeBufferPointer { st in
            try teacherValues.withUnsafeBufferPointer { t in
                try batch.labels!.withUnsafeBufferPointer { y in
                    try batch.mask!.withUnsafeBufferPointer { m in
                        try gradient.withUnsafeMutableBufferPointer { g in
                            try loss.evaluate(
                                studentLogits: st, teacher: .logits(t), labels: y, mask: m,
                                rows: 3, classes: 3, gradient: g)
                        }
                    }
                }
            }
        }
        XCTAssertEqual(Array(gradient[6..<9]), [0, 0, 0])  // the padded row
        let realRows = try loss.evaluate(
            studentLogits: Array(logits[0..<6]), teacherLogits: Array(teacherValues[0..<6]),
            labels: [0, 1], classes: 3
        ).value
        XCTAssertEqual(masked.loss, realRows.loss, accuracy: 1e-6)
        let step = TrainingStep(model: model, optimizer: SGD(learningRate: 0))
        let value = try batch.labels!.withUnsafeBufferPointer { y in
            try batch.mask!.withUnsafeBufferPointer { m in
                try step.run(
                    batch: batch.inputs,
                    teacher: .logits(UnsafeBufferPointer(batch.teacher!.buffer)),
                    labels: y, loss: loss, mask: m
                ).value
            }
        }
        XCTAssertEqual(value.loss, realRows.loss, accuracy: 1e-6)
    }

    /// A rule only context shows: a word after "mr" is a person. The window tagger learns it from
    /// the tagged sentences (validation F1 at least 0.95), and so does a student from the teacher's logits
    /// with no tags at all.
    /// An encoder tagger's inference splits each batch of pieces over the cores as a training
    /// step does (each replica masking its own sentences' padding): on 2 and 3 parts, with a short
    /// last batch and sentences longer than the context, the logits of one pass over each batch.
    func testEncoderInferenceSplitOverPartsGivesTheSameLogits() throws {
        var generator = SeededGenerator(seed: 12)
        let words = ["ann", "met", "bob", "at", "home", "the", "saw"]
        let sentences = TaggedSentences(
            sentences: (0..<13).map { i in
                let w = (0..<(2 + i % 9)).map { _ in words[Int(generator.next() % 7)] }
                return CoNLLFile.Sentence(
                    words: w, tags: w.map { _ in "O" }, lines: w.indices.map { $0 })
            }, firstRows: Array(repeating: 0, count: 13))
        let model = try Model(
            spec: ArchitectureSpec(parsing: "encoder:layers=1,dim=8,heads=2,context=6,buckets=64"),
            inputShape: [6, 6], classes: 3, generator: &generator)
        XCTAssertEqual(sentences.pieces(context: 6).count % 5, 2)  // a last batch of 2 pieces
        let batches = try TaggerInference.batches(model: model, sentences: sentences, batchSize: 5)
        let whole = try TaggerInference.logits(
            running: BatchSplit(model: model, maximumParts: 1), sentences: sentences,
            batches: batches)
        XCTAssertEqual(whole.count, sentences.words * 3)
        for parts in [2, 3] {
            let parted = BatchSplit(model: model, maximumParts: parts)
            let split = try TaggerInference.logits(
                running: parted, sentences: sentences, batches: batches)
            XCTAssertTrue(parted.isSplit, "the last batch ran in parts")
            assertClose(split, whole, rtol: 1e-5, atol: 1e-6, "\(parts) parts")
        }
    }

    func testTaggersLearnARuleFromTagsAndFromATeacher() throws {
        var generator = SeededGenerator(seed: 11)
        let names = ["ann", "bob", "cy", "dee", "eve"]
        let filler = ["the", "met", "saw", "and", "at", "home"]
        func sentence() -> CoNLLFile.Sentence {
            var words: [String] = []
            var tags: [String] = []
            for _ in 0..<(3 + Int(generator.next() % 5)) {
                if generator.next() % 3 == 0 {
                    words += ["mr", names[Int(generator.next() % 5)]]
                    tags += ["O", "B-PER"]
                } else {
                    let w =
                        generator.next() % 4 == 0
                        ? names[Int(generator.next() % 5)] : filler[Int(generator.next() % 6)]
                    words.append(w)
                    tags.append("O")
                }
            }
            return CoNLLFile.Sentence(words: words, tags: tags, lines: words.indices.map { $0 })
        }
        let training = TaggedSentences(
            sentences: (0..<200).map { _ in sentence() }, firstRows: Array(repeating: 0, count: 200)
        )
        var offset = 0
        let numbered = TaggedSentences(
            sentences: training.sentences,
            firstRows: training.sentences.map { s in
                defer { offset += s.words.count }
                return offset
            })
        let validation = TaggedSentences(
            sentences: (0..<40).map { _ in sentence() }, firstRows: Array(repeating: 0, count: 40))
        let tags = ["B-PER", "O"]
        var options = TrainingOptions()
        (options.steps, options.batchSize, options.optimizer, options.learningRate) = (
            150, 16, .adam, 0.01
        )
        options.validations = 3
        let spec = try ArchitectureSpec(
            parsing: "window:radius=1,dim=8,hidden=16,context=8,buckets=1024")
        var weights = SeededGenerator(seed: 1)
        let teacher = try Model(spec: spec, inputShape: [8, 6], classes: 2, generator: &weights)
        let summary = try Trainer(
            model: teacher, options: options, tagged: numbered, validation: validation, tags: tags,
            bio: true
        ).run()
        XCTAssertGreaterThanOrEqual(summary.bestValidationAccuracy ?? 0, 0.95)
        let logits = try TaggerInference.logits(model: teacher, sentences: numbered)
        XCTAssertEqual(logits.count, numbered.words * 2)
        // Validation keeps its pieces between rounds: the same logits from them every time.
        let kept = try TaggerInference.batches(model: teacher, sentences: validation)
        let once = try TaggerInference.logits(model: teacher, sentences: validation, batches: kept)
        XCTAssertEqual(
            once, try TaggerInference.logits(model: teacher, sentences: validation, batches: kept))
        XCTAssertEqual(once, try TaggerInference.logits(model: teacher, sentences: validation))
        let student = try Model(spec: spec, inputShape: [8, 6], classes: 2, generator: &weights)
        let distilled = try Trainer(
            model: student, options: options, tagged: numbered.keepingLabels(forFirst: 0),
            validation: validation, tags: tags, bio: true,
            teacher: .rows(.values(logits, width: 2)),
            loss: try DistillationLoss(temperature: 1, alpha: 1)
        ).run()
        XCTAssertGreaterThanOrEqual(distilled.bestValidationAccuracy ?? 0, 0.95)
        // Without tags and without a teacher there is nothing to learn from.
        XCTAssertThrowsError(
            try Trainer(
                model: student, options: options, tagged: numbered.keepingLabels(forFirst: 0),
                validation: validation, tags: tags, bio: true))
    }
}
