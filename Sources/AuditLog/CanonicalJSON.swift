import VaultCore

/// Writes the audit log's canonical JSON (docs/audit.md): keys in the order the caller gives
/// (sorted), no spaces, UTF-8 as is, and only `"`, `\` and control characters escaped — `\n`,
/// `\r`, `\t`, `\b`, `\f` short, the rest as `\u00xx` — as Python's
/// `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes it.
struct CanonicalJSON {
    var bytes: [UInt8] = []

    /// A writer with room for a typical entry (400–500 bytes before `prev` and `seq`).
    init() { bytes.reserveCapacity(512) }

    /// A writer of nothing yet, with no buffer (see `object`).
    init(empty: Void) {}

    struct Object {
        var first = true
        var writer: CanonicalJSON

        /// A field whose name is a literal in our code: written as it is (every such name is plain
        /// ASCII that needs no escaping, which debug builds check).
        mutating func field(_ key: StaticString, _ value: (inout CanonicalJSON) -> Void) {
            if !first { writer.bytes.append(UInt8(ascii: ",")) }
            first = false
            writer.bytes.append(UInt8(ascii: "\""))
            key.withUTF8Buffer { name in
                assert(!name.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 >= 0x80 })
                writer.bytes.append(contentsOf: name)
            }
            writer.bytes.append(UInt8(ascii: "\""))
            writer.bytes.append(UInt8(ascii: ":"))
            value(&writer)
        }

        /// A field whose name is data: escaped like any string.
        mutating func field(named key: String, _ value: (inout CanonicalJSON) -> Void) {
            if !first { writer.bytes.append(UInt8(ascii: ",")) }
            first = false
            writer.string(key)
            writer.bytes.append(UInt8(ascii: ":"))
            value(&writer)
        }
    }

    mutating func object(_ body: (inout Object) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        // The buffer moves to the object's writer and back by swapping, so it stays uniquely
        // referenced and each append writes in place (a copy would reallocate per object).
        var o = Object(writer: CanonicalJSON(empty: ()))
        swap(&o.writer.bytes, &bytes)
        body(&o)
        swap(&o.writer.bytes, &bytes)
        bytes.append(UInt8(ascii: "}"))
    }

    mutating func array<T>(_ items: [T], _ write: (inout CanonicalJSON, T) -> Void) {
        bytes.append(UInt8(ascii: "["))
        for (i, item) in items.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            write(&self, item)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func integer(_ n: Int) { bytes.append(contentsOf: String(n).utf8) }

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        escape(text)
        bytes.append(UInt8(ascii: "\""))
    }

    /// `text`'s characters as they go between the quotes of a JSON string.
    mutating func escape(_ text: String) {
        // Most values need no escaping: copied whole.
        let plain = text.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            guard !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if plain == true { return }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: bytes.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0..<0x20:
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(Hex.digit(byte >> 4))
                bytes.append(Hex.digit(byte & 0xF))
            default: bytes.append(byte)
            }
        }
    }
}

/// An entry encoded but for its `prev` and `seq` (see `AuditEvent.encodedParts`).
public struct EncodedEvent: Sendable {
    /// The entry with an empty `prev` and no `seq` value; `prev` goes at `prevAt`, `seq` at `seqAt`.
    var bytes: [UInt8]
    var prevAt: Int
    var seqAt: Int

    /// The whole entry, with `prev` and `seq` in their places.
    public func line(prev: String, seq: Int) -> [UInt8] {
        var line: [UInt8] = []
        write(to: &line, seq: seq) { out in
            var escaped = CanonicalJSON()
            escaped.escape(prev)
            out += escaped.bytes
        }
        return line
    }

    /// Appends the whole entry to `bytes`, `prev` being the previous entry's leaf hash (in hex).
    func write(to bytes: inout [UInt8], prev: InlineHash?, seq: Int) {
        write(to: &bytes, seq: seq) { out in
            prev?.withUnsafeBytes { Hex.append($0, to: &out) }
        }
    }

    func write(to bytes: inout [UInt8], seq: Int, prev: (inout [UInt8]) -> Void) {
        bytes += self.bytes[..<prevAt]
        prev(&bytes)
        bytes += self.bytes[prevAt..<seqAt]
        bytes.append(contentsOf: String(seq).utf8)
        bytes += self.bytes[seqAt...]
    }
}
