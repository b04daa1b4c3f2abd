import CSodium
import Crypto
import Foundation
import VaultCore

/// High-entropy secrets (API tokens, session tokens, recovery codes) stored only as a keyed hash.
///
/// The stored value is HMAC-SHA256 under a vault key, so a stolen database does not yield usable
/// tokens and cannot be brute-forced offline without the key. Verification is constant-time.
public struct SecretHasher: Sendable {
    /// libsodium's HMAC-SHA256 state after the key is absorbed (inner and outer SHA-256 states, a
    /// plain C struct): each use copies it on the stack, so a verification neither runs the key
    /// schedule again nor allocates.
    let keyed: crypto_auth_hmacsha256_state

    public init(key: [UInt8]) {
        precondition(key.count == 32)
        precondition(sodium_init() >= 0, "libsodium did not initialise")
        var state = crypto_auth_hmacsha256_state()
        _ = crypto_auth_hmacsha256_init(&state, key, key.count)
        keyed = state
    }

    /// HMAC-SHA256(key, secret) into `mac` (32 bytes).
    func code(_ secret: String, into mac: UnsafeMutablePointer<UInt8>) {
        var state = keyed
        var secret = secret
        secret.withUTF8 { bytes in
            _ = crypto_auth_hmacsha256_update(&state, bytes.baseAddress, UInt64(bytes.count))
        }
        _ = crypto_auth_hmacsha256_final(&state, mac)
    }

    /// Hex of HMAC-SHA256(key, secret).
    public func hash(_ secret: String) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { mac in
            code(secret, into: mac.baseAddress!)
            return Hex.encode(mac)
        }
    }

    /// Whether `stored` (hex, as `hash` makes it) is HMAC-SHA256(key, secret); the MACs are
    /// compared in constant time.
    public func verify(_ secret: String, against stored: String) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
            let expected = buffer.baseAddress!
            let mac = expected + 32
            guard Self.decodeHex(stored, into: expected) else { return false }
            code(secret, into: mac)
            return sodium_memcmp(mac, expected, 32) == 0
        }
    }

    /// Decodes 64 hex digits into 32 bytes at `out`; false for anything else.
    static func decodeHex(_ text: String, into out: UnsafeMutablePointer<UInt8>) -> Bool {
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        // From the string's bytes in place: every authenticated request decodes one.
        var text = text
        text.makeContiguousUTF8()
        return text.utf8.withContiguousStorageIfAvailable { chars in
            guard chars.count == 64 else { return false }
            for i in 0..<32 {
                guard let h = nibble(chars[2 * i]), let l = nibble(chars[2 * i + 1]) else { return false }
                out[i] = h << 4 | l
            }
            return true
        } ?? false
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
