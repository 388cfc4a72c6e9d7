import DistillCore

/// A token-labelling file in the CoNLL layout: one word per line, whitespace-separated columns,
/// the word first and its tag last; a blank line ends a sentence; `-DOCSTART-` lines are skipped.
///
/// A sentence whose tags are all `_` is unlabelled (its `tags` are nil), as is every sentence of a
/// words-only file (`labelled: false`: the first column of each line). Tags `O`, `B-TYPE` and
/// `I-TYPE` make a BIO file (`isBIO`), scored by entity as well as by tag; in IOB1 files an
/// entity may begin with `I-TYPE`, and every such tag (an `I-` after `O`, after another type or
/// at a sentence's start) becomes `B-TYPE` (IOB2; `convertedFromIOB1` counts them). Any other tag
/// set (part of speech, say) is scored per tag only.
public struct CoNLLFile: Sendable {
    public struct Sentence: Sendable, Equatable {
        public var words: [String]
        /// One tag per word, or nil for an unlabelled sentence.
        public var tags: [String]?
        /// The 1-based line of each word in the file.
        public var lines: [Int]
    }

    public let path: String
    public let sentences: [Sentence]
    /// Whether the tags are BIO (IOB2 after conversion).
    public let isBIO: Bool
    /// How many `I-` tags began an entity and became `B-` (IOB1 input).
    public let convertedFromIOB1: Int

    /// Reads `path`.
    /// - Throws: `FileError` naming the file (and line) for an unreadable or empty file, a file
    ///   without sentences, a word line whose column count differs from its sentence's first, a
    ///   labelled line with one column, or a BIO tag without a type (`B-`, `I-`).
    public init(path: String, labelled: Bool = true) throws {
        try self.init(path: path, bytes: readFileBytes(path), labelled: labelled)
    }

    /// Parses `bytes`, the contents of `path` (which errors name) already read.
    /// - Throws: `FileError` as `init(path:labelled:)` does.
    public init(path: String, bytes: [UInt8], labelled: Bool = true) throws {
        self.path = path
        guard !bytes.isEmpty else { throw FileError(path, "empty file") }
        let text = String(decoding: bytes, as: UTF8.self)
        func fail(_ line: Int, _ problem: String) -> FileError {
            FileError(path, "line \(line): \(problem)")
        }
        var sentences: [Sentence] = []
        var words: [String] = []
        var tags: [String] = []
        var lines: [Int] = []
        var columns = 0
        func close() {
            if !words.isEmpty {
                let unlabelled = !labelled || tags.allSatisfy { $0 == "_" }
                sentences.append(
                    Sentence(words: words, tags: unlabelled ? nil : tags, lines: lines))
            }
            (words, tags, lines, columns) = ([], [], [], 0)
        }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated()
        {
            let fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = fields.first else {
                close()
                continue
            }
            if first == "-DOCSTART-" {
                close()
                continue
            }
            let line = index + 1
            if labelled {
                guard fields.count >= 2 else {
                    throw fail(line, "one column; a labelled word line holds the word and its tag")
                }
                if words.isEmpty {
                    columns = fields.count
                } else if fields.count != columns {
                    throw fail(
                        line,
                        "\(fields.count) columns; the sentence's first word line (line \(lines[0])) has \(columns)"
                    )
                }
                tags.append(String(fields.last!))
            }
            words.append(String(first))
            lines.append(line)
        }
        close()
        guard !sentences.isEmpty else { throw FileError(path, "no sentences") }
        // BIO: every tag O, B-TYPE or I-TYPE (with a type), at least one not O.
        let all = sentences.lazy.compactMap(\.tags).joined()
        let prefixed = all.filter { $0.hasPrefix("B-") || $0.hasPrefix("I-") }
        if let bad = prefixed.first(where: { $0.count == 2 }) {
            let sentence = sentences.first { $0.tags?.contains(bad) == true }!
            throw fail(
                sentence.lines[sentence.tags!.firstIndex(of: bad)!],
                "tag \(bad) has no type (BIO tags are O, B-TYPE and I-TYPE)")
        }
        isBIO =
            !prefixed.isEmpty
            && all.allSatisfy {
                $0 == "O" || $0.count > 2 && ($0.hasPrefix("B-") || $0.hasPrefix("I-"))
            }
        var converted = 0
        if isBIO {
            for s in sentences.indices {
                guard var t = sentences[s].tags else { continue }
                for i in t.indices where t[i].hasPrefix("I-") {
                    let type = t[i].dropFirst(2)
                    if i == 0 || t[i - 1] == "O" || t[i - 1].dropFirst(2) != type {
                        t[i] = "B-" + type
                        converted += 1
                    }
                }
                sentences[s].tags = t
            }
        }
        convertedFromIOB1 = converted
        self.sentences = sentences
    }
}

/// An entity: its type and the positions of its first and last word in the sentence.
public struct EntitySpan: Hashable, Sendable {
    public let type: Substring
    public let start: Int
    public let end: Int
}

/// The entities of one sentence's BIO tags, by conlleval's rule: a span starts at `B-X`, or at an
/// `I-X` after `O`, after another type or at the sentence's start, and runs over the `I-X` that
/// follow it; `O`, a `B-`, another type or the sentence's end closes it.
public func entitySpans(_ tags: [String]) -> [EntitySpan] {
    var spans: [EntitySpan] = []
    var open: (type: Substring, start: Int)?
    for (i, tag) in tags.enumerated() {
        let type = tag.count > 2 ? tag.dropFirst(2) : ""
        let continues = tag.hasPrefix("I-") && open?.type == type
        if let o = open, !continues {
            spans.append(EntitySpan(type: o.type, start: o.start, end: i - 1))
            open = nil
        }
        if open == nil && (tag.hasPrefix("B-") || tag.hasPrefix("I-")) && !type.isEmpty {
            open = (type, i)
        }
    }
    if let o = open { spans.append(EntitySpan(type: o.type, start: o.start, end: tags.count - 1)) }
    return spans
}
