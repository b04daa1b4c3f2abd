/// Lowercase hexadecimal encoding.
public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digit(byte >> 4))
            out.append(digit(byte & 0xF))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the hex of `bytes` to `out` in one append (a hash's hex, byte by byte, checked
    /// the array's uniqueness and capacity 64 times).
    public static func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count * 2) { text in
            for (i, byte) in bytes.enumerated() {
                text[2 * i] = digit(byte >> 4)
                text[2 * i + 1] = digit(byte & 0xF)
            }
            out.append(contentsOf: text)
        }
    }

    /// The lowercase hex digit of `value` (0…15).
    @inline(__always)
    public static func digit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 &+ value : 0x57 &+ value }

    /// The bytes `text` spells in hex (either case); nil for an odd length or any other character.
    public static func decode(_ text: String) -> [UInt8]? {
        let count = text.utf8.count
        guard count % 2 == 0 else { return nil }
        var valid = false
        let out = [UInt8](unsafeUninitializedCapacity: count / 2) { buffer, initialized in
            valid = decode(text, into: buffer)
            initialized = valid ? count / 2 : 0
        }
        return valid ? out : nil
    }

    /// Decodes `text` into exactly `out.count` bytes, reading the string's bytes in place (no
    /// copy: an authenticated request decodes a stored hash this way); false for a text of
    /// another length or with any other character.
    public static func decode(_ text: String, into out: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        var text = text
        text.makeContiguousUTF8()
        return text.utf8.withContiguousStorageIfAvailable { chars in
            guard chars.count == out.count * 2 else { return false }
            for i in out.indices {
                guard let hi = value(chars[2 * i]), let lo = value(chars[2 * i + 1]) else { return false }
                out[i] = hi << 4 | lo
            }
            return true
        } ?? false
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}
