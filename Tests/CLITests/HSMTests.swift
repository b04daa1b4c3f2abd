import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A SoftHSM2 token in the test's own folder (SOFTHSM2_CONF points there), created with
/// softhsm2-util; pkcs11-tool (OpenSC) inspects and deletes keys as an operator would.
struct SoftHSM {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"
    static var available: Bool {
        FileManager.default.fileExists(atPath: module)
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/softhsm2-util")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/pkcs11-tool")
    }
    let conf: URL
    let token = "mvault-test"
    let pin = "4711-2342"
    var environment: [String: String] { ["SOFTHSM2_CONF": conf.path, "MVAULT_PKCS11_PIN": pin] }

    init(in root: URL) async throws {
        let dir = root.appendingPathComponent("softhsm")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("tokens"), withIntermediateDirectories: true)
        conf = dir.appendingPathComponent("softhsm2.conf")
        try Data("directories.tokendir = \(dir.appendingPathComponent("tokens").path)\n".utf8).write(to: conf)
        let r = try await tool(
            [
                "/usr/bin/softhsm2-util", "--init-token", "--free", "--label", token, "--pin", pin, "--so-pin",
                "99887766",
            ])
        try #require(r.status == 0, "\(r.stderr)")
    }

    func tool(_ args: [String]) async throws -> CLI.Result {
        try await CLI.run(
            Array(args.dropFirst()), cwd: conf.deletingLastPathComponent(), executable: URL(fileURLWithPath: args[0]),
            environment: ["SOFTHSM2_CONF": conf.path])
    }

    func pkcs11Tool(_ args: [String]) async throws -> CLI.Result {
        try await tool(
            ["/usr/bin/pkcs11-tool", "--module", Self.module, "--token-label", token, "--login", "--pin", pin] + args)
    }
}

@Suite("CLI: HSM-sealed vaults (SoftHSM2)", .serialized)
struct HSMTests {
    @Test(
        "init seals the root key in the token (non-extractable); the server unseals itself at start; a missing module, a wrong PIN or a deleted key keep it sealed, saying why; recovery shares still unseal",
        .enabled(if: SoftHSM.available, "needs SoftHSM2 and pkcs11-tool (apt-get install softhsm2 opensc)"))
    func hsmLifecycle() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let hsm = try await SoftHSM(in: cli.root)
        var r = try await cli.run(
            [
                "init", cli.vault.path, "--seal", "pkcs11", "--module", SoftHSM.module, "--token", hsm.token,
                "--shares", "3", "--threshold", "2",
            ], vaultFlag: false, environment: hsm.environment)
        #expect(r.status == 0, "\(r.stderr)")
        let recovery = CLI.shares(in: r.stdout)
        #expect(recovery.count == 3 && r.stdout.contains("Root key sealed by the HSM: token mvault-test"))
        let start = try #require(r.stdout.range(of: "mvault-root-"))
        let label = "mvault-root-" + r.stdout[start.upperBound...].prefix { $0.isHexDigit }
        // The key lives in the token, sensitive and never extractable.
        r = try await hsm.pkcs11Tool(["--list-objects", "--type", "secrkey"])
        #expect(r.stdout.contains("label:      \(label)") && r.stdout.contains("never extractable"), "\(r.stdout)")
        let keyring = try String(contentsOf: cli.vault.appendingPathComponent("keyring.json"), encoding: .utf8)
        #expect(keyring.contains("\"pkcs11\"") && keyring.contains("hsmRootKey"))

        // The CLI unseals with the token alone; the vault works.
        r = try await cli.run(["unseal"], environment: hsm.environment)
        #expect(r.status == 0 && r.stdout.contains("Vault unsealed"), "\(r.stderr)")
        let model = try cli.file("in/model.bin", size: 300_000)
        #expect(try await cli.run(["push", model.path, "--model", "acme/hsm"]).status == 0)
        try await cli.run(["seal"])

        // The server unseals itself at start.
        var (process, base) = try await cli.startServer(environment: hsm.environment)
        r = try await cli.curl([base + "/v1/sys/seal-status"])
        for _ in 0..<50 where !r.stdout.contains("\"sealed\":false") {
            try await Task.sleep(for: .milliseconds(100))
            r = try await cli.curl([base + "/v1/sys/seal-status"])
        }
        #expect(r.stdout.contains("\"sealed\":false"), "\(r.stdout)")
        kill(process.processIdentifier, SIGTERM)
        await CLI.waitForExit(process)

        // A wrong PIN, a module that is not there: sealed, and the seal status says why.
        for (environment, reason) in [
            (["MVAULT_PKCS11_PIN": "0000-0000"], "the PIN for token mvault-test is wrong"),
            (
                ["MVAULT_PKCS11_MODULE": "/nonexistent/libhsm.so"],
                "the PKCS#11 module /nonexistent/libhsm.so does not exist"
            ),
            (["MVAULT_PKCS11_PIN": ""], "no PIN for the HSM: set MVAULT_PKCS11_PIN or MVAULT_PKCS11_PIN_FILE"),
        ] {
            (process, base) = try await cli.startServer(environment: hsm.environment.merging(environment) { $1 })
            try await Task.sleep(for: .milliseconds(500))
            r = try await cli.curl([base + "/v1/sys/seal-status"])
            #expect(r.stdout.contains("\"sealed\":true") && r.stdout.contains(reason), "\(r.stdout)")
            kill(process.processIdentifier, SIGTERM)
            await CLI.waitForExit(process)
        }

        // The key deleted from the token: named; the recovery shares unseal, and the models are intact.
        r = try await hsm.pkcs11Tool(["--delete-object", "--type", "secrkey", "--label", label])
        #expect(r.status == 0, "\(r.stderr)")
        r = try await cli.run(["unseal"], environment: hsm.environment)
        #expect(r.status == 1 && r.stderr.contains("holds no key labelled \(label)"), "\(r.stderr)")
        for share in recovery.prefix(2) {
            r = try await cli.run(["unseal", "--recovery"], stdin: share, environment: hsm.environment)
        }
        #expect(r.stdout.contains("Vault unsealed"), "\(r.stdout) \(r.stderr)")
        let out = cli.root.appendingPathComponent("out")
        #expect(try await cli.run(["pull", "acme/hsm", "-o", out.path]).status == 0)
        #expect(
            FileManager.default.contentsEqual(atPath: out.appendingPathComponent("model.bin").path, andPath: model.path)
        )
    }

    @Test(
        "bad input: --seal pkcs11 without a module or token, a token that is not there, no PIN; nothing is created",
        .enabled(if: SoftHSM.available, "needs SoftHSM2 and pkcs11-tool (apt-get install softhsm2 opensc)"))
    func badInit() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let hsm = try await SoftHSM(in: cli.root)
        let base = ["init", cli.vault.path, "--seal", "pkcs11"]
        for (args, environment, message) in [
            (base, hsm.environment, "--seal pkcs11 needs --module PATH and --token LABEL"),
            (base + ["--module", SoftHSM.module, "--token", "absent"], hsm.environment, "no token labelled absent"),
            (
                base + ["--module", SoftHSM.module, "--token", hsm.token], ["SOFTHSM2_CONF": hsm.conf.path],
                "no PIN for the HSM"
            ),
            (
                base + ["--module", SoftHSM.module, "--token", hsm.token, "--threshold", "9"], hsm.environment,
                "--threshold must be between 1 and --shares"
            ),
        ] {
            let r = try await cli.run(args, vaultFlag: false, environment: environment)
            #expect(r.status == 1 && r.stderr.contains(message), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: cli.vault.path))
        }
        // The failed init with a good token left no key behind.
        let r = try await hsm.pkcs11Tool(["--list-objects", "--type", "secrkey"])
        #expect(!r.stdout.contains("mvault-root-"), "\(r.stdout)")
    }
}

extension HSMTests {
    @Test(
        "seal migrate moves a Shamir vault to the HSM and back; its shares become recovery shares and no payload changes",
        .enabled(if: SoftHSM.available, "needs SoftHSM2 and pkcs11-tool (apt-get install softhsm2 opensc)"))
    func migrate() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let hsm = try await SoftHSM(in: cli.root)
        // The key agent reaches the token with the environment of the unseal that starts it.
        let shares = try await cli.initVault()
        for share in shares.prefix(3) { try await cli.run(["unseal"], stdin: share, environment: hsm.environment) }
        let model = try cli.file("in/m.bin", size: 200_000)
        #expect(try await cli.run(["push", model.path, "--model", "acme/m"]).status == 0)
        func payloads() throws -> [String: Data] {
            let blobs = cli.vault.appendingPathComponent("blobs")
            var out: [String: Data] = [:]
            for dir in try FileManager.default.contentsOfDirectory(atPath: blobs.path) {
                for name in try FileManager.default.contentsOfDirectory(atPath: blobs.appendingPathComponent(dir).path)
                {
                    out[name] = try Data(contentsOf: blobs.appendingPathComponent("\(dir)/\(name)"))
                }
            }
            return out
        }
        let before = try payloads()

        var r = try await cli.run(
            ["seal", "migrate", "--to", "pkcs11", "--module", SoftHSM.module, "--token", hsm.token],
            environment: hsm.environment)
        #expect(r.status == 0 && r.stdout.contains("now sealed by PKCS#11 token mvault-test"), "\(r.stderr)")
        r = try await cli.run(
            ["seal", "migrate", "--to", "pkcs11", "--module", SoftHSM.module, "--token", hsm.token],
            environment: hsm.environment)
        #expect(r.status == 1 && r.stderr.contains("only a vault sealed with Shamir shares moves to an HSM"))
        try await cli.run(["seal"])
        r = try await cli.run(["unseal"], environment: hsm.environment)
        #expect(r.stdout.contains("Vault unsealed"), "\(r.stderr)")
        #expect(try payloads() == before)
        // The old shares are the recovery shares.
        try await cli.run(["seal"])
        for share in shares.prefix(3) {
            r = try await cli.run(["unseal", "--recovery"], stdin: share, environment: hsm.environment)
        }
        #expect(r.stdout.contains("Vault unsealed"), "\(r.stdout) \(r.stderr)")

        r = try await cli.run(["seal", "migrate", "--to", "shamir"])
        #expect(r.status == 0 && r.stdout.contains("now sealed by Shamir shares (3 of 5)"), "\(r.stderr)")
        try await cli.run(["seal"])
        r = try await cli.run(["unseal"], environment: hsm.environment)
        #expect(r.status == 1)
        for share in shares.suffix(3) { r = try await cli.run(["unseal"], stdin: share, environment: hsm.environment) }
        #expect(r.stdout.contains("Vault unsealed"))
        #expect(try payloads() == before)
        let out = cli.root.appendingPathComponent("out")
        #expect(try await cli.run(["pull", "acme/m", "-o", out.path]).status == 0)
        #expect(
            FileManager.default.contentsEqual(atPath: out.appendingPathComponent("m.bin").path, andPath: model.path))
    }
}

extension HSMTests {
    @Test(
        "the token's ECDSA P-256 key cosigns checkpoints and backup manifests; they verify with the exported key, and openssl agrees",
        .enabled(if: SoftHSM.available, "needs SoftHSM2 and pkcs11-tool (apt-get install softhsm2 opensc)"))
    func signing() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let hsm = try await SoftHSM(in: cli.root)
        var r = try await cli.run(
            ["init", cli.vault.path, "--seal", "pkcs11", "--module", SoftHSM.module, "--token", hsm.token],
            vaultFlag: false, environment: hsm.environment)
        #expect(r.status == 0, "\(r.stderr)")
        let keys = cli.root.appendingPathComponent("keys")
        r = try await cli.run(["key", "hsm-public", "--output", keys.path], environment: hsm.environment)
        #expect(r.status == 0 && r.stdout.contains("mvault-audit+"), "\(r.stderr)")
        // The private half never leaves the token.
        r = try await hsm.pkcs11Tool(["--list-objects", "--type", "privkey"])
        #expect(r.stdout.contains("EC") && r.stdout.contains("never extractable"), "\(r.stdout)")

        // Checkpoints written by a server the HSM unsealed verify with the token's key.
        let config = cli.root.appendingPathComponent("server.json")
        try Data(#"{"vault": "\#(cli.vault.path)", "audit": {"checkpointEvery": 2}}"#.utf8).write(to: config)
        let (process, base) = try await cli.startServer(
            environment: hsm.environment, arguments: ["--config", config.path])
        for _ in 0..<50 {
            if try await cli.curl([base + "/v1/sys/seal-status"]).stdout.contains("\"sealed\":false") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for _ in 0..<6 {
            _ = try await cli.curl([
                "-X", "POST", base + "/v1/auth/login", "-d", #"{"username": "nobody", "password": "wrong-password-1"}"#,
            ])
        }
        try await Task.sleep(for: .milliseconds(300))
        kill(process.processIdentifier, SIGTERM)
        await CLI.waitForExit(process)
        r = try await cli.run(["audit", "verify", "--key", keys.appendingPathComponent("audit-hsm.pub").path])
        #expect(
            r.status == 0 && r.stdout.contains("mvault-audit+") && !r.stdout.contains("checkpoints: 0"), "\(r.stdout)")

        // A backup made by the HSM-unsealed agent: its manifest verifies with the token's key.
        try await cli.run(["unseal"], environment: hsm.environment)
        let dest = cli.root.appendingPathComponent("backups")
        #expect(try await cli.run(["backup", "create", "--to", dest.path]).status == 0)
        r = try await cli.run(
            ["backup", "verify", "--from", dest.path, "--key", keys.appendingPathComponent("backup-hsm.pub").path],
            vaultFlag: false)
        #expect(r.status == 0 && r.stdout.hasSuffix("ok\n"), "\(r.stdout) \(r.stderr)")

        // openssl checks the token's signature line against the exported PEM.
        let snapshots = dest.appendingPathComponent("snapshots")
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: snapshots.path).first)
        let note = try String(contentsOf: snapshots.appendingPathComponent(name), encoding: .utf8)
        let parts = note.components(separatedBy: "\n\n")
        let signature = try #require(
            parts[1].split(separator: "\n").compactMap { line -> Data? in
                guard let blob = Data(base64Encoded: String(line.split(separator: " ")[2])), blob.count != 68 else {
                    return nil
                }
                return blob.dropFirst(4)
            }.first)
        try signature.write(to: cli.root.appendingPathComponent("sig.der"))
        try Data((parts[0] + "\n").utf8).write(to: cli.root.appendingPathComponent("text"))
        r = try await CLI.system(
            [
                "/usr/bin/openssl", "dgst", "-sha256", "-verify", keys.appendingPathComponent("hsm-signing.pem").path,
                "-signature", "sig.der", "text",
            ], cwd: cli.root)
        #expect(r.stdout.contains("Verified OK"), "\(r.stdout) \(r.stderr)")
    }
}
