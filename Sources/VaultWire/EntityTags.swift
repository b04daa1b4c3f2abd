/// The conditional request headers a download honours, compared as RFC 9110 §13 says.
public enum EntityTags {
    /// Whether `If-None-Match` lets the request go on: false means "answer 304". `*` or any tag in
    /// the list that equals `etag` under weak comparison (ignoring `W/`) stops it.
    public static func noneMatch(_ header: String?, _ etag: String) -> Bool {
        guard let header else { return true }
        let tags = list(header)
        if tags.contains("*") { return false }
        return !tags.contains { opaque($0) == opaque(etag) }
    }

    /// Whether a `Range` applies under `If-Range`: only when it names this exact representation by
    /// a strong tag. A weak tag, a date (downloads have no Last-Modified) or another tag means
    /// the client's partial copy is not of these bytes, so it gets the whole file.
    public static func rangeApplies(ifRange header: String?, _ etag: String) -> Bool {
        guard let header else { return true }
        let tag = header.trimmingOWS()
        return !tag.hasPrefix("W/") && tag == etag
    }

    static func list(_ header: String) -> [Substring] {
        header.split(separator: ",").map { $0.trimmingOWS() }.filter { !$0.isEmpty }
    }

    static func opaque<S: StringProtocol>(_ tag: S) -> S.SubSequence {
        tag.hasPrefix("W/") ? tag.dropFirst(2) : tag[...]
    }
}

extension StringProtocol {
    /// Without the optional whitespace (spaces and tabs) HTTP allows around values.
    func trimmingOWS() -> SubSequence {
        let isSpace = { (c: Character) in c == " " || c == "\t" }
        let start = firstIndex { !isSpace($0) } ?? endIndex
        let end = lastIndex { !isSpace($0) }.map(index(after:)) ?? endIndex
        return self[start..<Swift.max(start, end)]
    }
}
