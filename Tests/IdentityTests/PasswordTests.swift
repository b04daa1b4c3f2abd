import Crypto
import Foundation
import Identity
import Testing

@Suite("Passwords")
struct PasswordTests {
    /// Cheap parameters keep the suite fast; production uses `.standard` (64 MiB, t=3).
    let cheap = PasswordHashing(iterations: 1, memoryBytes: 8 << 20)

    @Test("Argon2id hashes verify the right password only, and carry their parameters")
    func hashAndVerify() throws {
        let hash = try cheap.hash("correct horse battery staple")
        #expect(hash.hasPrefix("$argon2id$v=19$m=8192,t=1,p=1$"))
        #expect(cheap.verify("correct horse battery staple", against: hash))
        #expect(!cheap.verify("correct horse battery stapler", against: hash))
        #expect(!cheap.verify("", against: hash))
        #expect(!cheap.verify("x", against: "not a hash"))
        #expect(try cheap.hash("same") != cheap.hash("same"), "salted")
    }

    @Test("a hash made at a lower cost needs rehashing once the configured cost grows")
    func rehash() throws {
        let hash = try cheap.hash("correct horse battery staple")
        #expect(!cheap.needsRehash(hash))
        #expect(PasswordHashing.standard.needsRehash(hash))
        let upgraded = try PasswordHashing.standard.hash("correct horse battery staple")
        #expect(!PasswordHashing.standard.needsRehash(upgraded))
        #expect(PasswordHashing.standard.verify("correct horse battery staple", against: upgraded))
    }

    @Test("the bundled list holds 10,000 common passwords")
    func bundledList() {
        #expect(PasswordPolicy.standard.commonPasswordCount == 10_000)
    }

    @Test(
        "the policy refuses short, common and username passwords",
        arguments: [
            ("short", IdentityError.passwordTooShort(minimum: 12)),
            ("elevenchars", IdentityError.passwordTooShort(minimum: 12)),
            ("administrator", IdentityError.passwordIsUsername),
            ("1qaz2wsx3edc", IdentityError.passwordTooCommon),
            ("Q1W2E3R4T5Y6", IdentityError.passwordTooCommon),
        ])
    func refused(password: String, error: IdentityError) {
        #expect(throws: error) { try PasswordPolicy.standard.check(password, username: "Administrator") }
    }

    @Test("a long uncommon password passes")
    func accepted() throws {
        try PasswordPolicy.standard.check("violet-quarry-ledger-42", username: "alice")
    }
}

@Suite("Keyed secrets")
struct SecretTests {
    @Test("tokens are stored as keyed hashes and verify only with the same key")
    func keyedHash() {
        let hasher = SecretHasher(key: SecretGenerator.bytes(32))
        let token = SecretGenerator.token()
        let stored = hasher.hash(token)
        #expect(stored.count == 64)
        #expect(!stored.contains(token))
        #expect(hasher.verify(token, against: stored))
        #expect(!hasher.verify(token + "x", against: stored))
        #expect(!SecretHasher(key: SecretGenerator.bytes(32)).verify(token, against: stored))
        #expect(!hasher.verify(token, against: "zz"))
        // The stored hex is read in either case; anything else is no match.
        #expect(hasher.verify(token, against: stored.uppercased()))
        #expect(!hasher.verify(token, against: String(stored.dropLast())))
        #expect(!hasher.verify(token, against: String(stored.dropLast()) + "g"))
        #expect(!hasher.verify(token, against: stored + "00"))
    }

    @Test("the keyed hash is standard HMAC-SHA256, so hashes stored by any earlier build still verify")
    func keyedHashIsHMAC() {
        let key = SecretGenerator.bytes(32)
        let hasher = SecretHasher(key: key)
        for secret in ["", "a", SecretGenerator.token(), String(repeating: "x", count: 200), "ünïcødé"] {
            let reference = HMAC<SHA256>.authenticationCode(for: Array(secret.utf8), using: SymmetricKey(data: key))
            let hex = reference.map { String(format: "%02x", $0) }.joined()
            #expect(hasher.hash(secret) == hex)
            #expect(hasher.verify(secret, against: hex))
        }
        // A fixed vector (key 0x00…0x1f, secret "mvault"), computed with Python's hmac module.
        let fixed = SecretHasher(key: Array(0..<32))
        #expect(fixed.hash("mvault") == "91aed3956c5b69ef5e2b84782146cdf1e68c3878ad843d29bafce440b9fd3f0c")
    }

    @Test("ten distinct recovery codes of 80 bits each")
    func recoveryCodes() {
        let codes = SecretGenerator.recoveryCodes()
        #expect(codes.count == 10)
        #expect(Set(codes).count == 10)
        for code in codes {
            #expect(code.count == 19)
            #expect(code.split(separator: "-").count == 4)
        }
    }
}
