import CSodium
import SealedFormat
import VaultCore

/// Argon2id (v1.3) from libsodium's `crypto_pwhash`, with its parameters kept beside its output.
public struct Argon2idParameters: Codable, Hashable, Sendable {
    /// Passes over memory (libsodium's opslimit).
    public var iterations: UInt64
    /// Memory in bytes (libsodium's memlimit).
    public var memoryBytes: Int
    /// 16 random bytes, hex.
    public var salt: String

    /// The vault default: 64 MiB, 3 passes (about 60 ms here), a fresh salt.
    public static func fresh() -> Argon2idParameters {
        Argon2idParameters(iterations: 3, memoryBytes: 64 << 20, salt: Hex.encode(SecureRandom.bytes(16)))
    }

    public init(iterations: UInt64, memoryBytes: Int, salt: String) {
        self.iterations = iterations
        self.memoryBytes = memoryBytes
        self.salt = salt
    }

    /// Derives a 32-byte key from `passphrase`.
    public func deriveKey(from passphrase: String) throws(KeyringError) -> [UInt8] {
        guard sodium_init() >= 0, let saltBytes = Hex.decode(salt),
            saltBytes.count == Int(crypto_pwhash_SALTBYTES)
        else { throw .kdfFailed }
        var out = [UInt8](repeating: 0, count: 32)
        let length = UInt64(passphrase.utf8.count)
        let status = out.withUnsafeMutableBufferPointer { outPtr in
            saltBytes.withUnsafeBufferPointer { s in
                passphrase.withCString { pw in
                    crypto_pwhash(
                        outPtr.baseAddress!, UInt64(outPtr.count), pw, length, s.baseAddress!,
                        iterations, memoryBytes, crypto_pwhash_ALG_ARGON2ID13)
                }
            }
        }
        guard status == 0 else { throw .kdfFailed }
        return out
    }
}
