/// A model's name: `namespace/name`, both parts lowercase ASCII letters, digits, `-`, `_` or `.`.
///
/// Names are validated once, here; everything past this type can trust them (they are also safe
/// as path components, since `.` and `..` alone are refused).
public struct ModelName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let namespace: String
    public let name: String

    /// Parses `namespace/name`.
    /// - Throws: `VaultError.invalidModelName` naming the rule that was broken.
    public init(parsing text: String) throws(VaultError) {
        let utf8 = text.utf8
        let slash = UInt8(ascii: "/")
        guard let at = utf8.firstIndex(of: slash), !utf8[utf8.index(after: at)...].contains(slash) else {
            throw .invalidModelName(text, reason: "expected namespace/name, e.g. acme/llama-7b")
        }
        let (namespace, name) = (String(text[..<at]), String(text[text.index(after: at)...]))
        try Self.validate(part: namespace, in: text)
        try Self.validate(part: name, in: text)
        self.namespace = namespace
        self.name = name
    }

    /// The name from its two parts (a route's two path segments), each validated as `parsing` does.
    public init(namespace: String, name: String) throws(VaultError) {
        let text = { "\(namespace)/\(name)" }
        do {
            try Self.validate(part: namespace, in: "")
            try Self.validate(part: name, in: "")
        } catch .invalidModelName(_, let reason) {
            throw .invalidModelName(text(), reason: reason)
        } catch {
            throw error
        }
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "\(namespace)/\(name)" }

    public static func < (lhs: ModelName, rhs: ModelName) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }

    /// Validates one half of a model name (also used for a bare namespace filter).
    public static func validate(part: String, in text: String) throws(VaultError) {
        guard !part.isEmpty, part.utf8.count <= 64 else {
            throw .invalidModelName(text, reason: "each part must be 1 to 64 characters")
        }
        guard part != ".", part != ".." else {
            throw .invalidModelName(text, reason: "'.' and '..' are not names")
        }
        for byte in part.utf8 {
            let ok =
                (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E
            guard ok else {
                throw .invalidModelName(
                    text, reason: "use lowercase letters, digits, '-', '_' and '.' only")
            }
        }
    }
}
