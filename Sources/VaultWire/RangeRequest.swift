/// What a request's `Range` header asks of a representation of `size` bytes, as RFC 9110 §14
/// defines it for the one unit this server knows, `bytes`.
public enum RangeRequest: Sendable, Equatable {
    /// The whole representation, 200: no Range, or one the server ignores (another unit, a
    /// malformed or invalid range, or several ranges, since it does not send multipart answers).
    case whole
    /// These bytes, 206 with `Content-Range: bytes first-last/size`.
    case partial(Range<UInt64>)
    /// None of the file, 416 with `Content-Range: bytes */size`: the range starts at or past the
    /// end, or asks for the last 0 bytes (or any suffix of an empty file).
    case unsatisfiable

    public init(header: String?, size: UInt64) {
        self = Self.parse(header, size: size)
    }

    private static func parse(_ header: String?, size: UInt64) -> RangeRequest {
        guard let header, let equals = header.firstIndex(of: "=") else { return .whole }
        // The unit is case-insensitive; the set may be padded with optional whitespace.
        guard header[..<equals].trimmingOWS().lowercased() == "bytes" else { return .whole }
        let set = header[header.index(after: equals)...].trimmingOWS()
        guard !set.contains(",") else { return .whole }
        let bounds = set.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard bounds.count == 2 else { return .whole }
        let (firstText, lastText) = (bounds[0], bounds[1])
        guard isDigits(firstText), isDigits(lastText), !(firstText.isEmpty && lastText.isEmpty) else { return .whole }
        if firstText.isEmpty {
            // `-n`: the last n bytes.
            let suffix = number(lastText)
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .partial((size - min(suffix, size))..<size)
        }
        let first = number(firstText)
        let last = lastText.isEmpty ? UInt64.max : number(lastText)
        guard last >= first else { return .whole }  // an invalid range is ignored
        guard first < size else { return .unsatisfiable }
        // A last position past the end means the end (and `last + 1` cannot overflow here).
        return .partial(first..<(last >= size ? size : last + 1))
    }

    private static func isDigits(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// Decimal digits; a number too large for 64 bits stands for "further than any file".
    private static func number(_ digits: Substring) -> UInt64 {
        UInt64(digits) ?? .max
    }
}

extension RangeRequest {
    /// The `Content-Range` value of a 206 for `range`, or of a 416 when nil.
    public static func contentRange(_ range: Range<UInt64>?, size: UInt64) -> String {
        guard let range else { return "bytes */\(size)" }
        return "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
    }
}
