import Foundation
import Keyring
import Testing

@Suite("CLI: init, unseal, seal, status", .serialized)
struct SealTests {
    @Test("shares are printed once; unseal takes them one per run and reports progress")
    func shamirUnseal() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let shares = try await cli.initVault()
        #expect(shares.count == 5)
        let keyring = try String(contentsOf: cli.vault.appendingPathComponent("keyring.json"), encoding: .utf8)
        for share in shares { #expect(!keyring.contains(String(share.dropFirst(5)))) }

        var r = try await cli.run(["status"])
        #expect(r.stdout.contains("sealed (0 of 3 shares given)"))
        r = try await cli.run(["unseal"], stdin: shares[0])
        #expect(r.status == 0)
        #expect(r.stdout.contains("1 of 3"))
        r = try await cli.run(["unseal"], stdin: shares[0])
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: that share was already given"))
        r = try await cli.run(["unseal"], stdin: shares[3])
        #expect(r.stdout.contains("2 of 3"))
        r = try await cli.run(["status"])
        #expect(r.stdout.contains("sealed (2 of 3 shares given)"))
        r = try await cli.run(["unseal"], stdin: shares[4])
        #expect(r.stdout.contains("Vault unsealed"))
        r = try await cli.run(["status"])
        #expect(r.stdout.contains("State:        unsealed"))
        #expect(r.stdout.contains("v1"))

        r = try await cli.run(["seal"])
        #expect(r.status == 0)
        r = try await cli.run(["ls"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: the vault is sealed"))
        #expect(r.stderr.contains("hint: unseal it with `mvault unseal`"))
    }

    @Test("mistyped, foreign and non-reconstructing shares are refused with clear errors")
    func badShares() async throws {
        let cli = try CLI()
        let other = try CLI()
        defer {
            cli.cleanup()
            other.cleanup()
        }
        let shares = try await cli.initVault()
        let foreign = try await other.initVault()

        var typo = Array(shares[0])
        typo[20] = typo[20] == "a" ? "b" : "a"
        var r = try await cli.run(["unseal"], stdin: String(typo))
        #expect(r.status == 1)
        #expect(r.stderr.contains("checksum mismatch"))

        r = try await cli.run(["unseal"], stdin: foreign[0])
        #expect(r.status == 1)
        #expect(r.stderr.contains("belongs to a different vault"))
        #expect(try await cli.run(["status"]).stdout.contains("0 of 3"))

        // Well-formed shares of this vault that do not lie on its polynomial: each is refused on
        // its own (the keyring holds a digest of every genuine share), before it spoils progress.
        let genuine = try UnsealShare(text: shares[0])
        try await cli.run(["unseal"], stdin: shares[1])
        for x in 1...3 {
            let forged = UnsealShare(
                vaultID: genuine.vaultID, threshold: 3,
                point: .init(x: UInt8(x), y: (0..<32).map { _ in UInt8.random(in: 0...255) }))
            r = try await cli.run(["unseal"], stdin: forged.text)
            #expect(r.status == 1)
            #expect(r.stderr.contains("that is not one of this vault's unseal shares"), "\(r.stderr)")
        }
        r = try await cli.run(["status"])
        #expect(r.stdout.contains("sealed (1 of 3 shares given)"), "\(r.stdout)")
        try await cli.run(["unseal", "--reset"])

        r = try await cli.run(["unseal"], stdin: "")
        #expect(r.status == 1)
        #expect(r.stderr.contains("no share given"))
        for share in shares.suffix(3) { try await cli.run(["unseal"], stdin: share) }
        #expect(try await cli.run(["status"]).stdout.contains("unsealed"))
    }

    @Test("a passphrase vault unseals with the right passphrase only")
    func passphrase() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let pass = cli.root.appendingPathComponent("pass.txt")
        try Data("a long enough passphrase\n".utf8).write(to: pass)
        var r = try await cli.run(["init", cli.vault.path, "--passphrase-file", pass.path], vaultFlag: false)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("mvs1-"))
        r = try await cli.run(["unseal"], stdin: "a long enough passphrasE")
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: wrong passphrase"))
        #expect(try await cli.run(["status"]).stdout.contains("sealed"))
        r = try await cli.run(["unseal"], stdin: "a long enough passphrase")
        #expect(r.status == 0)
        #expect(r.stdout.contains("Vault unsealed"))
    }

    @Test("init refuses a weak passphrase, bad thresholds and an existing vault, creating nothing")
    func initErrors() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let pass = cli.root.appendingPathComponent("p")
        try Data("short\n".utf8).write(to: pass)
        var r = try await cli.run(["init", cli.vault.path, "--passphrase-file", pass.path], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("at least 12 characters"))
        r = try await cli.run(["init", cli.vault.path, "--shares", "3", "--threshold", "4"], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("--threshold must be between 1 and --shares"))
        #expect(!FileManager.default.fileExists(atPath: cli.vault.path))
        _ = try await cli.initVault()
        r = try await cli.run(["init", cli.vault.path], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("already holds a vault"))
        r = try await cli.run(["status", "--vault", cli.root.appendingPathComponent("none").path], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("is not a ModelVault vault"))
        #expect(r.stderr.contains("hint: create one with `mvault init DIR`"))
    }
}
