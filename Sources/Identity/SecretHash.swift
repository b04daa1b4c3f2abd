import Crypto
import Foundation

/// High-entropy secrets (API tokens, session tokens, recovery codes) stored only as a keyed hash.
///
/// The stored value is HMAC-SHA256 under a vault key, so a stolen database does not yield usable
/// tokens and cannot be brute-forced offline without the key. Verification is constant-time.
public struct SecretHasher: Sendable {
    /// The HMAC state after the key is absorbed; copied per use (the digests copy on write), so
    /// the key schedule runs once per hasher rather than once per verification.
    let keyed: HMAC<SHA256>

    public init(key: [UInt8]) {
        precondition(key.count == 32)
        keyed = HMAC<SHA256>(key: SymmetricKey(data: key))
    }

    func code(_ secret: String) -> HashedAuthenticationCode<SHA256> {
        var mac = keyed
        mac.update(data: Array(secret.utf8))
        return mac.finalize()
    }

    /// Hex of HMAC-SHA256(key, secret).
    public func hash(_ secret: String) -> String {
        code(secret).map { String(format: "%02x", $0) }.joined()
    }

    public func verify(_ secret: String, against stored: String) -> Bool {
        guard let mac = decodeHex(stored), mac.count == 32 else { return false }
        return code(secret) == mac  // constant time
    }

    func decodeHex(_ text: String) -> [UInt8]? {
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count / 2)
        var chars = text.utf8.makeIterator()
        while let hi = chars.next() {
            guard let lo = chars.next(), let h = nibble(hi), let l = nibble(lo) else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }
}

/// Random secrets in the forms users see.
public enum SecretGenerator {
    /// `count` random bytes from swift-crypto's generator.
    public static func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            SymmetricKey(size: .bits256).withUnsafeBytes { out += $0.prefix(count - out.count) }
        }
        return out
    }

    /// A recovery code like `k7qm-2xfa-93pd-hw4e` (80 bits, base32 lowercase, grouped by four).
    public static func recoveryCode() -> String {
        let text = Base32.encode(bytes(10)).lowercased()
        return stride(from: 0, to: text.count, by: 4).map { i in
            let start = text.index(text.startIndex, offsetBy: i)
            return String(text[start..<text.index(start, offsetBy: min(4, text.count - i))])
        }.joined(separator: "-")
    }

    /// Ten single-use recovery codes.
    public static func recoveryCodes() -> [String] { (0..<10).map { _ in recoveryCode() } }

    /// An opaque bearer secret: 256 bits, base32 lowercase.
    public static func token() -> String { Base32.encode(bytes(32)).lowercased() }
}
