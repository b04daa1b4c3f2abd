import Crypto
import SealedFormat
import VaultCore

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
