import CSodium

/// Argon2id password hashes in the PHC string format (`$argon2id$v=19$m=…,t=…,p=1$…`), from
/// libsodium's `crypto_pwhash_str`. The parameters travel inside each hash, so raising the
/// configured cost makes `needsRehash` true for older hashes, which are replaced at next login.
public struct PasswordHashing: Codable, Hashable, Sendable {
    /// Passes over memory.
    public var iterations: UInt64
    /// Memory in bytes.
    public var memoryBytes: Int

    /// 64 MiB, 3 passes: about 60 ms here.
    public static let standard = PasswordHashing(iterations: 3, memoryBytes: 64 << 20)

    public init(iterations: UInt64, memoryBytes: Int) {
        self.iterations = iterations
        self.memoryBytes = memoryBytes
    }

    public func hash(_ password: String) throws(IdentityError) -> String {
        guard sodium_init() >= 0 else { throw .hashingFailed }
        var out = [CChar](repeating: 0, count: Int(crypto_pwhash_STRBYTES))
        let length = UInt64(password.utf8.count)
        let status = password.withCString { pw in
            crypto_pwhash_str_alg(&out, pw, length, iterations, memoryBytes, crypto_pwhash_ALG_ARGON2ID13)
        }
        guard status == 0 else { throw .hashingFailed }
        return String(cString: out)
    }

    /// Checks `password` against `hash` (libsodium compares in constant time).
    public func verify(_ password: String, against hash: String) -> Bool {
        guard sodium_init() >= 0 else { return false }
        let length = UInt64(password.utf8.count)
        return hash.withCString { h in
            password.withCString { pw in crypto_pwhash_str_verify(h, pw, length) == 0 }
        }
    }

    /// Whether `hash` was made with other parameters than these.
    public func needsRehash(_ hash: String) -> Bool {
        hash.withCString { crypto_pwhash_str_needs_rehash($0, iterations, memoryBytes) != 0 }
    }
}
