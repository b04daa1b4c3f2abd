/// "Did you mean …?": the known name nearest a mistyped one.
public enum Suggestion {
    /// The name in `names` closest to `typed` by edit distance, when it is close enough to be a
    /// typo (at most 2 edits, or a third of the length); nil otherwise.
    public static func nearest(_ typed: String, in names: [String]) -> String? {
        let scored = names.map { (name: $0, distance: distance(typed.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { ($0.distance, $0.name) < ($1.distance, $1.name) }) else { return nil }
        return best.distance <= max(2, typed.count / 3) ? best.name : nil
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let (a, b) = (Array(a), Array(b))
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in 1...b.count {
                let above = row[j]
                row[j] = Swift.min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }
}
