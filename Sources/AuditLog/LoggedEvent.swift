import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An entry as the log wrote it: its line in the entries file (canonical JSON, without the
/// newline), and the fields a SIEM header needs, read from the line without decoding the rest.
public struct LoggedEvent: Sendable {
    public let seq: Int
    public let phase: String
    public let allowed: Bool?
    public let status: Int?
    /// The entry's time as the log wrote it (`YYYY-MM-DDTHH:MM:SS.mmmZ`), a slice of `bytes`.
    public let timeText: ArraySlice<UInt8>
    /// The entry's bytes in the log (without the newline): what `SIEMFormat.json` sends.
    public let bytes: ArraySlice<UInt8>

    /// Reads the header fields of one log line: nil unless it is a JSON object with a `seq`, a
    /// `phase` and a `time` as the log writes them (no spaces between tokens). The rest of the
    /// line is skipped, not checked.
    public init?(line: ArraySlice<UInt8>) {
        var fields: (seq: Int?, phase: Range<Int>?, time: Range<Int>?, allowed: Bool?, status: Int?)
        let found = line.withUnsafeBufferPointer { buffer in
            var scan = Scanner(bytes: buffer)
            return scan.members { scan, key in
                if Scanner.matches(key, "seq") {
                    fields.seq = scan.integer()
                } else if Scanner.matches(key, "phase") {
                    fields.phase = scan.string()
                } else if Scanner.matches(key, "time") {
                    fields.time = scan.string()
                } else if Scanner.matches(key, "decision") {
                    return scan.members { scan, key in
                        guard Scanner.matches(key, "allowed") else { return scan.skipValue() }
                        fields.allowed = scan.boolean()
                        return fields.allowed != nil
                    }
                } else if Scanner.matches(key, "result") {
                    return scan.members { scan, key in
                        guard Scanner.matches(key, "status") else { return scan.skipValue() }
                        fields.status = scan.integer()
                        return fields.status != nil
                    }
                } else {
                    return scan.skipValue()
                }
                return true
            } && scan.at == buffer.count
        }
        guard found, let seq = fields.seq, let phase = fields.phase, let time = fields.time, time.count == 24
        else { return nil }
        let base = line.startIndex
        self.seq = seq
        self.phase = String(decoding: line[(base + phase.lowerBound)..<(base + phase.upperBound)], as: UTF8.self)
        timeText = line[(base + time.lowerBound)..<(base + time.upperBound)]
        (allowed, status) = (fields.allowed, fields.status)
        bytes = line
    }

    /// The entry's time (the epoch if the line's time is not one).
    public var time: Date {
        Timestamp.parse(String(decoding: timeText, as: UTF8.self)) ?? Date(timeIntervalSince1970: 0)
    }

    /// The whole event, decoded from `bytes` (a line that does not decode gives an event with
    /// only the header fields).
    public var event: AuditEvent {
        if let decoded = try? AuditEvent.decode(bytes) { return decoded }
        var event = AuditEvent(phase: phase, requestID: "", action: "", actor: .init())
        (event.seq, event.time) = (seq, time)
        return event
    }

    /// Just enough JSON to walk an object's members and read the scalars a header needs. Every
    /// read checks its bounds and reports failure: a line is untrusted bytes.
    struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var at = 0

        func peek() -> UInt8? { at < bytes.count ? bytes[at] : nil }

        /// Whether `key` is `name`.
        static func matches(_ key: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
            key.count == name.utf8CodeUnitCount
                && (key.isEmpty || memcmp(key.baseAddress!, name.utf8Start, key.count) == 0)
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek() == byte else { return false }
            at += 1
            return true
        }

        /// Calls `body` with each member's key, the scanner on its value, which `body` consumes
        /// (returning false on failure); true once the closing brace is read.
        mutating func members(_ body: (inout Scanner, UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
            guard take(UInt8(ascii: "{")) else { return false }
            if take(UInt8(ascii: "}")) { return true }
            repeat {
                guard let key = string(), take(UInt8(ascii: ":")),
                    body(&self, UnsafeBufferPointer(rebasing: bytes[key]))
                else { return false }
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}"))
        }

        /// Where a string's bytes are, escapes and all, between its quotes.
        mutating func string() -> Range<Int>? {
            guard take(UInt8(ascii: "\"")), let base = bytes.baseAddress else { return nil }
            let start = at
            while at < bytes.count {
                guard let quote = memchr(base + at, 0x22, bytes.count - at) else { return nil }
                let end = base.distance(to: quote.assumingMemoryBound(to: UInt8.self))
                at = end + 1
                // Escaped if an odd number of backslashes precede it.
                var backslashes = 0
                while end - backslashes > start, bytes[end - backslashes - 1] == UInt8(ascii: "\\") { backslashes += 1 }
                if backslashes % 2 == 0 { return start..<end }
            }
            return nil
        }

        mutating func integer() -> Int? {
            let negative = take(UInt8(ascii: "-"))
            var (value, digits) = (0, 0)
            while let byte = peek(), (0x30...0x39).contains(byte) {
                guard digits < 18 else { return nil }
                (value, digits, at) = (value * 10 + Int(byte - 0x30), digits + 1, at + 1)
            }
            return digits > 0 ? (negative ? -value : value) : nil
        }

        mutating func boolean() -> Bool? {
            for (word, value) in [("true", true), ("false", false)]
            where bytes[at...].starts(with: word.utf8) {
                at += word.utf8.count
                return value
            }
            return nil
        }

        /// Skips one value of any kind: a string whole, an object or array to its matching end,
        /// a number or literal to the next `,` or `}`.
        mutating func skipValue() -> Bool {
            var depth = 0
            while let byte = peek() {
                switch byte {
                case UInt8(ascii: "\""):
                    guard string() != nil else { return false }
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    (at, depth) = (at + 1, depth + 1)
                case UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ","):
                    if depth == 0 { return true }
                    if byte != UInt8(ascii: ",") { depth -= 1 }
                    at += 1
                default:
                    at += 1
                }
            }
            return depth == 0
        }
    }
}
