/// How a tagger sees a word: six feature ids, each a bucket of a hashed table shared by all
/// slots, so that any word (seen in training or not) has features and a model file needs no
/// vocabulary of its own (the hashing trick).
///
/// The slots, from the word's UTF-8 text:
/// 0. the word lower-cased (ASCII letters);
/// 1. its shape: every upper-case letter `X`, lower-case letter `x`, digit `d`, other characters
///    as they are, runs of one symbol collapsed (`Paris` -> `Xx`, `IBM` -> `X`, `3.14` -> `d.d`);
/// 2, 3. its first 2 and 3 characters, lower-cased;
/// 4, 5. its last 2 and 3 characters, lower-cased.
///
/// Each feature is the slot number and the text, hashed with 64-bit FNV-1a to a bucket in
/// `1..<buckets` (the size of the tagger's table, 65,536 by default); id 0 is padding (a position
/// without a word). Collisions are rare enough to ignore at 65,536 buckets for vocabularies of
/// tens of thousands of words, and an unseen word still carries its shape and affixes.
public enum WordFeatures {
    /// Feature ids per word.
    public static let slots = 6
    /// The default size of the shared table, padding included (`FeatureEmbedding`'s vocabulary).
    public static let buckets = 1 << 16

    /// Writes the word's `slots` feature ids (as Floats, the way layers take ids) to `ids`, for a
    /// table of `buckets` rows (at least 2).
    public static func write(
        _ word: String, buckets: Int = WordFeatures.buckets, to ids: UnsafeMutablePointer<Float>
    ) {
        let bytes = Array(word.utf8)
        let lower = bytes.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        var shape: [UInt8] = []
        for b in bytes {
            let symbol: UInt8 =
                b >= 65 && b <= 90 ? 88 : b >= 97 && b <= 122 ? 120 : b >= 48 && b <= 57 ? 100 : b
            if shape.last != symbol { shape.append(symbol) }
        }
        let features: [ArraySlice<UInt8>] = [
            lower[...], shape[...], lower.prefix(2), lower.prefix(3), lower.suffix(2),
            lower.suffix(3),
        ]
        for (slot, text) in features.enumerated() {
            ids[slot] = Float(bucket(slot: slot, text, buckets: buckets))
        }
    }

    /// The bucket of `text` in `slot`: FNV-1a over the slot byte and the text, into
    /// `1..<buckets`.
    static func bucket(slot: Int, _ text: ArraySlice<UInt8>, buckets: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in [UInt8(slot)] + Array(text) {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return 1 + Int(hash % UInt64(buckets - 1))
    }
}
