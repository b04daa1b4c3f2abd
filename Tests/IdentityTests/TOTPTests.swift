import Foundation
import Identity
import Testing

@Suite("TOTP (RFC 6238)")
struct TOTPTests {
    struct Vector: Sendable, CustomStringConvertible {
        var time: Int64
        var algorithm: TOTP.Algorithm
        var code: String
        var description: String { "\(algorithm.rawValue) @\(time)" }
    }

    /// RFC 6238 Appendix B, 8 digits.
    static let vectors: [Vector] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ].flatMap { t, sha1, sha256, sha512 in
        [
            Vector(time: t, algorithm: .sha1, code: sha1), Vector(time: t, algorithm: .sha256, code: sha256),
            Vector(time: t, algorithm: .sha512, code: sha512),
        ]
    }

    static func secret(for algorithm: TOTP.Algorithm) -> [UInt8] {
        let seed = Array("12345678901234567890".utf8)
        switch algorithm {
        case .sha1: return seed
        case .sha256: return Array((seed + seed).prefix(32))
        case .sha512: return Array((seed + seed + seed + seed).prefix(64))
        }
    }

    @Test("RFC 6238 Appendix B", arguments: vectors)
    func rfcVectors(_ v: Vector) {
        let totp = TOTP(secret: Self.secret(for: v.algorithm), algorithm: v.algorithm, digits: 8)
        #expect(totp.code(at: Date(timeIntervalSince1970: TimeInterval(v.time))) == v.code)
    }

    @Test("±1 step of skew is accepted, 2 steps are not; a used step cannot be replayed")
    func skewAndReplay() {
        let totp = TOTP(secret: TOTP.generateSecret())
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let step = totp.step(at: now)
        let current = totp.code(forStep: step)
        #expect(totp.validate(current, at: now, lastUsedStep: nil) == step)
        #expect(totp.validate(totp.code(forStep: step - 1), at: now, lastUsedStep: nil) == step - 1)
        #expect(totp.validate(totp.code(forStep: step + 1), at: now, lastUsedStep: nil) == step + 1)
        #expect(totp.validate(totp.code(forStep: step - 2), at: now, lastUsedStep: nil) == nil)
        #expect(totp.validate(current, at: now, lastUsedStep: step) == nil, "replay of the same code")
        #expect(totp.validate(totp.code(forStep: step - 1), at: now, lastUsedStep: step) == nil)
        #expect(totp.validate("12345", at: now, lastUsedStep: nil) == nil)
        #expect(totp.validate("abcdef", at: now, lastUsedStep: nil) == nil)
    }

    @Test("the provisioning URI is what authenticator apps read")
    func uri() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8))
        #expect(
            totp.provisioningURI(account: "alice@acme")
                == "otpauth://totp/ModelVault%3Aalice%40acme?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ModelVault&algorithm=SHA1&digits=6&period=30"
        )
    }

    /// The project's venv interpreter (scripts/test installs pyotp there). Not resolved through
    /// symlinks: the venv's python is a link, and following it would leave the venv.
    static let python = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".venv/bin/python").path

    static var hasPyotp: Bool {
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import pyotp"]
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    @Test(
        "codes agree with pyotp, the reference client",
        .enabled(if: hasPyotp, "needs pyotp in .venv (run scripts/test once)"))
    func agreesWithPyotp() throws {
        let totp = TOTP(secret: TOTP.generateSecret())
        let uri = totp.provisioningURI(account: "bob")
        let times = [0, 59, 1_700_000_000, 1_800_000_015, 2_000_000_000]
        let script = """
            import pyotp, sys
            t = pyotp.parse_uri(sys.argv[1])
            print(" ".join(t.at(int(x)) for x in sys.argv[2:]))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.python)
        p.arguments = ["-c", script, uri] + times.map(String.init)
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        let theirs = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        let ours = times.map { totp.code(at: Date(timeIntervalSince1970: TimeInterval($0))) }
        #expect(theirs == ours)
    }
}

@Suite("Base32 (RFC 4648)")
struct Base32Tests {
    @Test(
        "RFC 4648 §10 vectors, unpadded",
        arguments: [
            ("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ])
    func vectors(plain: String, encoded: String) {
        #expect(Base32.encode(Array(plain.utf8)) == encoded)
        #expect(Base32.decode(encoded) == Array(plain.utf8))
        #expect(Base32.decode(encoded.lowercased() + "===") == Array(plain.utf8))
    }

    @Test func rejectsOtherCharacters() {
        #expect(Base32.decode("MZ1W") == nil)
    }
}
