import DistillCore
import DistillData
import DistillNN

/// A CoNLL file with a tagger's predictions appended.
public enum TaggedOutput {
    /// The text of `input` with the predicted tag appended (after a space) to every word line;
    /// blank lines, `-DOCSTART-` lines and line ends are kept as they are. The words are the first
    /// column, so a file with gold tags comes back with gold and predicted tags side by side.
    /// - Throws: `FileError` for an unreadable or malformed file.
    public static func conll(model: Model, tags: [String], input: String) throws -> String {
        let bytes = try readFileBytes(input)
        let file = try CoNLLFile(path: input, bytes: bytes, labelled: false)
        let sentences = TaggedSentences(consecutive: file.sentences)
        let logits = try TaggerInference.logits(model: model, sentences: sentences)
        let predicted = TaggingEvaluation(
            logits: logits, tags: tags, sentences: sentences, bio: false
        ).predicted
        var tagOfLine: [Int: String] = [:]
        for (s, sentence) in file.sentences.enumerated() {
            for (i, line) in sentence.lines.enumerated() { tagOfLine[line] = predicted[s][i] }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for index in lines.indices {
            guard let tag = tagOfLine[index + 1] else { continue }
            let line = lines[index]
            lines[index] =
                line.hasSuffix("\r") ? line.dropLast() + " " + tag + "\r" : line + " " + tag
        }
        return lines.joined(separator: "\n")
    }
}
