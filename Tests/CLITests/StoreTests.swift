import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("CLI: push, pull, ls, show, rm", .serialized)
struct StoreTests {
    @Test("push and pull through the real binary give byte-identical files")
    func pushPull() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        _ = try await cli.unsealed()
        let weights = try cli.file("in/model.safetensors", size: 5_000_000)
        let config = try cli.file("in/config.json", size: 100)
        var r = try await cli.run(["push", weights.path, config.path, "--model", "acme/llama", "--note", "base"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("pushed acme/llama@1 (2 file(s)"))
        #expect(!r.stdout.contains("\r"), "no progress bar when stdout is not a terminal")
        r = try await cli.run(["pull", "acme/llama@1", "-o", cli.root.appendingPathComponent("out").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("(verified)"))
        for name in ["model.safetensors", "config.json"] {
            let a = try Data(contentsOf: cli.root.appendingPathComponent("in/\(name)"))
            let b = try Data(contentsOf: cli.root.appendingPathComponent("out/\(name)"))
            #expect(a == b)
        }
        r = try await cli.run(["ls"])
        #expect(r.stdout.contains("acme/llama  1 version(s)  latest @1"))
        r = try await cli.run(["ls", "acme/"])
        #expect(r.stdout.contains("acme/llama"))
        r = try await cli.run(["show", "acme/llama"])
        #expect(r.stdout.contains("@1"))
        #expect(r.stdout.contains("\"base\""))
        r = try await cli.run(["show", "acme/llama@1"])
        #expect(r.stdout.contains("model.safetensors  5000000 bytes  sha256:"))
        r = try await cli.run(["verify"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("2 file(s) checked, 0 failed"))
        r = try await cli.run(["rm", "acme/llama@1"])
        #expect(r.status == 0)
        r = try await cli.run(["show", "acme/llama"])
        #expect(r.stdout.contains("0 version(s)"))
    }

    @Test("--json prints one document of the records; a mistyped command gets the nearest one; completions")
    func jsonAndHelp() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        _ = try await cli.unsealed()
        try await cli.run(["push", try cli.file("in/a.bin", size: 1000).path, "--model", "acme/a", "--note", "first"])
        func document(_ args: [String]) async throws -> [String: Any] {
            let r = try await cli.run(args + ["--json"])
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(r.stdout.split(separator: "\n").count == 1, "one document: \(r.stdout)")
            return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        }
        let models = try #require(try await document(["ls"])["models"] as? [[String: Any]])
        #expect(
            models.count == 1 && models[0]["name"] as? String == "acme/a" && models[0]["latestVersion"] as? Int == 1)
        let versions = try #require(try await document(["show", "acme/a"])["versions"] as? [[String: Any]])
        #expect(versions.first?["note"] as? String == "first")
        let version = try await document(["show", "acme/a@1"])
        #expect((version["files"] as? [[String: Any]])?.first?["size"] as? Int == 1000)
        #expect((version["createdAt"] as? String)?.hasSuffix("Z") == true)
        let verified = try await document(["verify"])
        #expect(verified["checked"] as? Int == 1 && (verified["failures"] as? [Any])?.isEmpty == true)

        var r = try await cli.run(["pus", "x"], vaultFlag: false)
        #expect(
            r.status == 1 && r.stderr.hasPrefix("error: unknown command 'pus'; did you mean 'push'?"), "\(r.stderr)")
        for shell in ["bash", "zsh", "fish"] {
            r = try await cli.run(["completions", shell], vaultFlag: false)
            #expect(r.status == 0 && r.stdout.contains("mvault") && r.stdout.contains("push"), "\(shell)")
        }
        r = try await cli.run(["completions", "tcsh"], vaultFlag: false)
        #expect(r.status != 0 && r.stderr.contains("use bash, zsh or fish"))
    }

    @Test("bad input: each gets a one-line error, exit 1, and changes nothing")
    func badInput() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        _ = try await cli.unsealed()
        let file = try cli.file("in/a.bin", size: 1000)
        try await cli.run(["push", file.path, "--model", "acme/a"])
        let out = cli.root.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: out.appendingPathComponent("a.bin"))
        let cases: [([String], String)] = [
            (["push", file.path, "--model", "Acme/A"], "invalid model name 'Acme/A'"),
            (["push", file.path, "--model", "acme"], "expected namespace/name"),
            (["push", file.path, "--model", "acme/.."], "'.' and '..' are not names"),
            (
                ["push", cli.root.appendingPathComponent("missing.bin").path, "--model", "acme/a"],
                "missing.bin: no such file"
            ),
            (["pull", "acme/nope", "-o", out.path], "no model named acme/nope"),
            (["pull", "acme/a@7", "-o", out.path], "model acme/a has no version 7"),
            (["pull", "acme/a@x", "-o", out.path], "invalid version 'x'"),
            (["pull", "acme/a", "-o", out.path], "already exists"),
            (["rm", "acme/a"], "name the version to remove"),
            (["rm", "acme/a@9"], "model acme/a has no version 9"),
        ]
        for (args, message) in cases {
            let r = try await cli.run(args)
            #expect(r.status == 1, "\(args)")
            #expect(r.stderr.hasPrefix("error: "), "\(args): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        #expect(try Data(contentsOf: out.appendingPathComponent("a.bin")) == Data("mine".utf8))
        let r = try await cli.run(["show", "acme/a"])
        #expect(r.stdout.contains("acme/a: 1 version(s)"))
        #expect(try await cli.run(["ls"]).stdout.split(separator: "\n").count == 1)
    }

    @Test("corrupt ciphertext: pull and verify name the file and the segment")
    func corruption() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        _ = try await cli.unsealed()
        try await cli.run(["push", try cli.file("in/w.bin", size: 1_000_000).path, "--model", "acme/w"])
        let blobs = cli.vault.appendingPathComponent("blobs")
        let prefix = try #require(try FileManager.default.contentsOfDirectory(atPath: blobs.path).first)
        let name = try #require(
            try FileManager.default.contentsOfDirectory(atPath: blobs.appendingPathComponent(prefix).path).first)
        let blob = blobs.appendingPathComponent("\(prefix)/\(name)")
        var bytes = try Data(contentsOf: blob)
        bytes[132 + 5 * (65536 + 16) + 100] ^= 1
        try bytes.write(to: blob)
        var r = try await cli.run(["pull", "acme/w", "-o", cli.root.appendingPathComponent("out").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: acme/w@1/w.bin is corrupt: segment 5 failed authentication"))
        #expect(!FileManager.default.fileExists(atPath: cli.root.appendingPathComponent("out/w.bin").path))
        r = try await cli.run(["verify"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAILED acme/w@1/w.bin"))
    }

    @Test("key rotate, retire and rewrap through the CLI")
    func keys() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let shares = try await cli.unsealed()
        let weights = try cli.file("in/w.bin", size: 300_000).path
        try await cli.run(["push", weights, "--model", "acme/w"])
        try await cli.run(["push", weights, "--model", "acme/w2"])  // the same bytes: one blob
        var r = try await cli.run(["key", "rotate"])
        #expect(r.stdout.contains("Key version 2 is now active"))
        r = try await cli.run(["key", "retire", "--below", "9"])
        #expect(r.status == 1)
        #expect(
            r.stderr.contains("key version 9 is not in this keyring") || r.stderr.contains("below 9"), "\(r.stderr)")
        // Retiring would strand both versions' files: refused, naming each and the fix.
        r = try await cli.run(["key", "retire", "--below", "2"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("2 file(s) are still wrapped under key versions below 2"), "\(r.stderr)")
        #expect(
            r.stdout.contains("acme/w@1/w.bin  (key version 1)")
                && r.stdout.contains("acme/w2@1/w.bin  (key version 1)"))
        #expect(r.stderr.contains("hint: run `mvault key rewrap` first, then retire"))
        r = try await cli.run(["pull", "acme/w2", "-o", cli.root.appendingPathComponent("o1").path])
        #expect(r.status == 0, "nothing was retired: \(r.stderr)")
        r = try await cli.run(["key", "rewrap"])
        #expect(r.stdout.contains("1 file(s) rewrapped to key version 2"), "\(r.stdout)")
        r = try await cli.run(["key", "retire", "--below", "2"])
        #expect(r.status == 0 && r.stdout.contains("No stored file uses a retired version."), "\(r.stderr)")
        r = try await cli.run(["pull", "acme/w", "-o", cli.root.appendingPathComponent("o2").path])
        #expect(r.status == 0)
        // The keyring change survives sealing: after a fresh unseal, v2 is active and v1 retired.
        try await cli.run(["seal"])
        for share in shares.suffix(3) { try await cli.run(["unseal"], stdin: share) }
        r = try await cli.run(["status"])
        #expect(r.stdout.contains("v1  created"))
        #expect(r.stdout.contains("0 file(s)  retired"))
        #expect(r.stdout.contains("2 file(s)  active for new files"))
    }
}

@Suite("CLI: crashes and full disks", .serialized)
struct CrashTests {
    @Test("SIGKILL at many points during a push never leaves a half-visible version")
    func killDuringPush() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        _ = try await cli.unsealed()
        let base = try cli.file("in/base.bin", size: 100_000)
        try await cli.run(["push", base.path, "--model", "acme/k"])
        let big = try cli.file("in/big.bin", size: 64_000_000)
        let small = try cli.file("in/small.json", size: 10)
        for delay in [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0] {
            _ = try await CLI.killed(
                ["push", small.path, big.path, "--model", "acme/k", "--vault", cli.vault.path], after: delay)
            // Every listed version is whole: verify authenticates every byte of every file.
            let show = try await cli.run(["show", "acme/k"])
            #expect(show.status == 0)
            let versions = show.stdout.split(separator: "\n").filter { $0.contains("  @") }
            for line in versions where !line.contains("@1 ") {
                #expect(line.contains("2 file(s)"), "half-visible version: \(line)")
            }
            let verify = try await cli.run(["verify"])
            #expect(verify.status == 0, "\(verify.stdout)")
        }
        let finished =
            try await cli.run(["show", "acme/k"]).stdout.split(separator: "\n").filter { $0.contains("  @") }.count - 1
        #expect(finished < 10, "no kill landed before its push finished")
        // The next push succeeds, leftovers are cleaned, and the first version is intact.
        let r = try await cli.run(["push", small.path, big.path, "--model", "acme/k"])
        #expect(r.status == 0, "\(r.stderr)")
        let staging = try FileManager.default.contentsOfDirectory(atPath: cli.vault.appendingPathComponent("tmp").path)
        #expect(staging.isEmpty)
        let out = cli.root.appendingPathComponent("out")
        #expect(try await cli.run(["pull", "acme/k@1", "-o", out.path]).status == 0)
        #expect(try Data(contentsOf: out.appendingPathComponent("base.bin")) == Data(contentsOf: base))
    }

    static var canMountTmpfs: Bool { getuid() == 0 && FileManager.default.fileExists(atPath: "/bin/mount") }

    @Test(
        "a full disk fails the push with a clear error and changes nothing",
        .enabled(if: canMountTmpfs, "needs root and mount, for a small tmpfs"))
    func fullDisk() async throws {
        let cli = try CLI()
        let mountPoint = cli.root.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        let mount = try await CLI.system(
            ["/bin/mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mountPoint.path], cwd: cli.root)
        try #require(mount.status == 0, "cannot mount tmpfs: \(mount.stderr)")
        defer {
            CLI.systemNow(
                [CLI.binary.path, "seal", "--vault", mountPoint.appendingPathComponent("v").path], cwd: cli.root)
            CLI.systemNow(["/bin/umount", mountPoint.path], cwd: cli.root)
            cli.cleanup()
        }
        let vault = mountPoint.appendingPathComponent("v").path
        let initOut = try await CLI.run(["init", vault, "--shares", "2", "--threshold", "2"], cwd: cli.root)
        let shares = CLI.shares(in: initOut.stdout)
        for share in shares { _ = try await CLI.run(["unseal", "--vault", vault], stdin: share, cwd: cli.root) }
        let small = try cli.file("in/small.bin", size: 500_000)
        #expect(
            try await CLI.run(["push", small.path, "--model", "acme/f", "--vault", vault], cwd: cli.root).status == 0)
        let big = try cli.file("in/big.bin", size: 8_000_000)
        let r = try await CLI.run(["push", big.path, "--model", "acme/f", "--vault", vault], cwd: cli.root)
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: no space left on the device"))
        #expect(r.stderr.contains("hint: free some space; nothing was changed"))
        let show = try await CLI.run(["show", "acme/f", "--vault", vault], cwd: cli.root)
        #expect(show.stdout.contains("acme/f: 1 version(s)"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: vault + "/tmp").isEmpty)
        #expect(try await CLI.run(["verify", "--vault", vault], cwd: cli.root).status == 0)
        #expect(
            try await CLI.run(["push", small.path, "--model", "acme/f", "--vault", vault], cwd: cli.root).status == 0)

        // Pulling onto a full device: clear error, no partial file left behind.
        let outMount = cli.root.appendingPathComponent("tiny")
        try FileManager.default.createDirectory(at: outMount, withIntermediateDirectories: true)
        try #require(
            try await CLI.system(
                ["/bin/mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", outMount.path], cwd: cli.root
            )
            .status
                == 0)
        defer { CLI.systemNow(["/bin/umount", outMount.path], cwd: cli.root) }
        let pull = try await CLI.run(["pull", "acme/f@1", "-o", outMount.path, "--vault", vault], cwd: cli.root)
        #expect(pull.status == 1)
        #expect(pull.stderr.contains("error: no space left on the device"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: outMount.path).isEmpty)
    }
}
