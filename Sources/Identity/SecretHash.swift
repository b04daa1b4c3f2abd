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
            let expected = UnsafeMutableBufferPointer(rebasing: buffer[..<32])
            let mac = buffer.baseAddress! + 32
            guard Hex.decode(stored, into: expected) else { return false }
            code(secret, into: mac)
            return sodium_memcmp(mac, expected.baseAddress!, 32) == 0
        }
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
