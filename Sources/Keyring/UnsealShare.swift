import Crypto
import SealedFormat

/// One unseal share as printed at `mvault init` and typed at `mvault unseal`.
///
/// Text form: `mvs1-` then hex of vault id (8 bytes) ‖ threshold ‖ x ‖ y (32 bytes) ‖ the first
/// 4 bytes of SHA-256 over everything before. The checksum catches typos; the vault id catches a
/// share from another vault before it can spoil an unseal.
public struct UnsealShare: Hashable, Sendable {
    public static let textPrefix = "mvs1-"
    public let vaultID: [UInt8]
    public let threshold: Int
    public let point: Shamir.Point

    public init(vaultID: [UInt8], threshold: Int, point: Shamir.Point) {
        self.vaultID = Array(vaultID.prefix(8))
        self.threshold = threshold
        self.point = point
    }

    public var text: String {
        var payload = vaultID + [UInt8(threshold), point.x] + point.y
        payload += SHA256.hash(data: payload).prefix(4)
        return Self.textPrefix + Hex.encode(payload)
    }

    /// Parses a share, ignoring surrounding whitespace and case.
    /// - Throws: `KeyringError.malformedShare` with what is wrong.
    public init(text: String) throws(KeyringError) {
        let cleaned = text.filter { !$0.isWhitespace }.lowercased()
        guard cleaned.hasPrefix(Self.textPrefix) else {
            throw .malformedShare("a share starts with \(Self.textPrefix)")
        }
        guard let payload = Hex.decode(String(cleaned.dropFirst(Self.textPrefix.count))),
            payload.count == 8 + 2 + 32 + 4
        else { throw .malformedShare("wrong length or not hex; check for a missing character") }
        let body = Array(payload[0..<42])
        guard Array(SHA256.hash(data: body).prefix(4)) == Array(payload[42...]) else {
            throw .malformedShare("checksum mismatch; check it for a mistyped character")
        }
        guard payload[8] >= 1, payload[9] != 0 else { throw .malformedShare("invalid share values") }
        self.init(
            vaultID: Array(body[0..<8]), threshold: Int(body[8]),
            point: Shamir.Point(x: body[9], y: Array(body[10..<42])))
    }
}

/// Lowercase hexadecimal encoding.
public enum Hex {
    /// The lowercase hex digits, as UTF-8.
    public static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
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
