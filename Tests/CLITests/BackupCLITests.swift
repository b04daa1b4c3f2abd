import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("CLI: mvault backup", .serialized)
struct BackupCLITests {
    @Test(
        "SIGKILL during a backup lists no snapshot as complete; the next backup and verify succeed, copying only what is missing"
    )
    func killDuringBackup() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let shares = try await cli.unsealed()
        let big = try cli.file("in/big.bin", size: 150_000_000)
        try await cli.run(["push", big.path, "--model", "acme/big"])
        let dest = cli.root.appendingPathComponent("backups").path
        var killed = 0
        var complete = 0
        for delay in [0.02, 0.05, 0.1, 0.2, 0.4] {
            let process = try await CLI.killed(
                ["backup", "create", "--to", dest, "--vault", cli.vault.path], after: delay)
            if process.terminationReason == .uncaughtSignal { killed += 1 } else { complete += 1 }
            // A killed backup leaves no snapshot: only finished ones are listed.
            let list = try await cli.run(["backup", "list", "--from", dest])
            let listed = list.stdout.split(separator: "\n").filter { $0.contains(" files ") }.count
            #expect(listed == complete, "\(list.stdout)")
            #expect(!list.stdout.contains("NOT VALID"))
        }
        #expect(killed >= 2, "no kill landed before the backup finished")
        var r = try await cli.run(["backup", "create", "--to", dest])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("snapshot "))
        r = try await cli.run(["backup", "list", "--from", dest])
        #expect(r.stdout.split(separator: "\n").count == complete + 1, "\(r.stdout)")
        r = try await cli.run(["backup", "list", "--from", dest, "--json"])
        let listing = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect((listing?["snapshots"] as? [Any])?.count == complete + 1, "\(r.stdout)")
        r = try await cli.run(["backup", "verify", "--from", dest, "--read-data"])
        #expect(
            r.status == 0 && r.stdout.contains("(from the vault's keyring)") && r.stdout.hasSuffix("ok\n"),
            "\(r.stdout)")
        // Unchanged: nothing is copied again.
        r = try await cli.run(["backup", "create", "--to", dest])
        #expect(r.stdout.contains("copied 0 objects (0 B)"), "\(r.stdout)")
        // Status shows it.
        r = try await cli.run(["status"])
        #expect(r.stdout.contains("Last backup:  20"), "\(r.stdout)")

        // Restore, unseal with the original shares, pull the same bytes.
        let restored = cli.root.appendingPathComponent("restored").path
        r = try await cli.run(["backup", "restore", "--from", dest, "--to", restored], vaultFlag: false)
        #expect(r.status == 0, "\(r.stderr)")
        for share in shares.prefix(3) {
            try await cli.run(["unseal", "--vault", restored], stdin: share, vaultFlag: false)
        }
        defer { CLI.systemNow([CLI.binary.path, "seal", "--vault", restored], cwd: cli.root) }
        let out = cli.root.appendingPathComponent("out").path
        r = try await cli.run(["pull", "acme/big", "-o", out, "--vault", restored], vaultFlag: false)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: out + "/big.bin", andPath: big.path))
    }

    @Test("bad input: a sealed vault, no backup there, a non-empty restore target, an unknown snapshot")
    func badInput() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let shares = try await cli.initVault()
        let dest = cli.root.appendingPathComponent("backups").path
        var r = try await cli.run(["backup", "create", "--to", dest])
        #expect(r.status == 1 && r.stderr.contains("the vault is sealed"), "\(r.stderr)")
        r = try await cli.run(["status"])
        #expect(r.stdout.contains("Last backup:  failed"), "\(r.stdout)")
        let nothing = cli.root.appendingPathComponent("nothing").path
        r = try await cli.run(["backup", "list", "--from", nothing], vaultFlag: false)
        #expect(r.status == 1 && r.stderr.contains("holds no backup"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: nothing))

        for share in shares.prefix(3) { try await cli.run(["unseal"], stdin: share) }
        #expect(try await cli.run(["backup", "create", "--to", dest]).status == 0)
        let occupied = cli.root.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: occupied, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: occupied.appendingPathComponent("note.txt"))
        r = try await cli.run(["backup", "restore", "--from", dest, "--to", occupied.path], vaultFlag: false)
        #expect(r.status == 1 && r.stderr.contains("is not empty; restore into a new or empty directory"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: occupied.path) == ["note.txt"])
        let target = cli.root.appendingPathComponent("r").path
        r = try await cli.run(
            ["backup", "restore", "--from", dest, "--to", target, "--snapshot", "nope"], vaultFlag: false)
        #expect(r.status == 1 && r.stderr.contains("has no complete snapshot nope"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: target))
    }
}
