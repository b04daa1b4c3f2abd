import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("CLI: mvault server", .serialized)
struct ServerCommandTests {
    @Test("the binary serves HTTPS on the port it prints, unseals through curl, and exits cleanly on SIGTERM")
    func serveAndStop() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let shares = try await cli.initVault()
        let (process, base) = try await cli.startServer()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        #expect(!base.hasSuffix(":0"))
        var r = try await cli.curl([base + "/v1/sys/seal-status"])
        #expect(r.stdout.contains("\"sealed\":true"))
        r = try #require(try await cli.unsealOverHTTPS(base, shares: Array(shares.prefix(3))))
        #expect(r.stdout.contains("\"sealed\":false"), "\(r.stdout)")
        r = try await cli.curl(["-o", "/dev/null", "-w", "%{http_code}", base + "/v1/sys/health"])
        #expect(r.stdout == "200")
        // Without the vault CA, curl refuses the server's certificate.
        let untrusted = try await CLI.system(
            ["/usr/bin/curl", "-s", "--max-time", "10", base + "/v1/sys/health"], cwd: cli.root)
        #expect(untrusted.status == 60)

        kill(process.processIdentifier, SIGTERM)
        await CLI.waitForExit(process)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }

    @Test("on the server's host the CLI uses the server's keys: no second unseal, and seal seals the server")
    func hostUsesServer() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let shares = try await cli.initVault()
        let (process, base) = try await cli.startServer()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let health = { try await cli.curl(["-o", "/dev/null", "-w", "%{http_code}", base + "/v1/sys/health"]).stdout }
        // Unsealed over HTTPS with the CLI, a share at a time from stdin (never on the command line).
        let ca = cli.vault.appendingPathComponent("tls/ca.crt").path
        for share in shares.prefix(3) {
            let r = try await cli.run(["unseal", "--addr", base, "--ca", ca], stdin: share, vaultFlag: false)
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(try await health() == "200")
        // Host commands work with the server's unsealed state.
        var r = try await cli.run(["status"])
        #expect(r.stdout.contains("State:        unsealed"), "\(r.stdout)")
        r = try await cli.run(["backup", "create", "--to", cli.root.appendingPathComponent("backups").path])
        #expect(r.status == 0, "\(r.stderr)")
        // mvault seal seals the server, and mvault unseal on the host unseals it again.
        r = try await cli.run(["seal"])
        #expect(r.status == 0 && r.stdout.contains("Vault sealed."), "\(r.stderr)")
        #expect(try await health() == "503")
        for share in shares.prefix(3) { try await cli.run(["unseal"], stdin: share) }
        #expect(try await health() == "200")
        r = try await cli.run(["unseal", "--addr", base, "--ca", ca], stdin: shares[0], vaultFlag: false)
        #expect(r.stdout.contains("The server is already unsealed."))
    }

    @Test("mvault server on a directory that is not a vault says how to name one, not an option it lacks")
    func serverWithoutVault() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let r = try await cli.run(
            ["server"], vaultFlag: false, environment: ["MVAULT_VAULT": cli.root.path, "MVAULT_LISTEN": "127.0.0.1:0"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("then name it in the config file's \"vault\" or in MVAULT_VAULT"), "\(r.stderr)")
        #expect(!r.stderr.contains("--vault"), "\(r.stderr)")
    }

    @Test("a second mvault server on the same vault exits at once, naming the one that runs")
    func secondServer() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        _ = try await cli.initVault()
        let (process, base) = try await cli.startServer()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let port = try #require(base.split(separator: ":").last)
        let r = try await cli.run(
            ["server"], vaultFlag: false, environment: ["MVAULT_VAULT": cli.vault.path, "MVAULT_LISTEN": "127.0.0.1:0"])
        #expect(r.status == 1)
        #expect(
            r.stderr.contains(
                "another mvault server already serves \(cli.vault.path) (pid \(process.processIdentifier), listening on 127.0.0.1:\(port))"
            ), "\(r.stderr)")
        #expect(process.isRunning)
    }

    @Test("init --admin creates the first administrator, who logs in over HTTPS; weak passwords create nothing")
    func adminLogin() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let weak = cli.root.appendingPathComponent("weak")
        try Data("1qaz2wsx3edc\n".utf8).write(to: weak)
        var r = try await cli.run(
            ["init", cli.vault.path, "--admin", "ops", "--admin-password-file", weak.path], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("10,000 most common"))
        #expect(!FileManager.default.fileExists(atPath: cli.vault.path))
        r = try await cli.run(["init", cli.vault.path, "--admin", "Bad Name"], vaultFlag: false)
        #expect(r.stderr.contains("invalid user name"))

        let good = cli.root.appendingPathComponent("good")
        try Data("violet-quarry-ledger-42\n".utf8).write(to: good)
        r = try await cli.run(
            ["init", cli.vault.path, "--admin", "ops", "--admin-password-file", good.path], vaultFlag: false)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Administrator: ops"))
        let shares = CLI.shares(in: r.stdout)

        // Logging at its most verbose, to show no secret reaches the log.
        let log = cli.root.appendingPathComponent("server.log")
        let (process, base) = try await cli.startServer(environment: ["MVAULT_LOG_LEVEL": "trace"], log: log)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        try await cli.unsealOverHTTPS(base, shares: Array(shares.prefix(3)))
        r = try await cli.curl([
            "-X", "POST", base + "/v1/auth/login", "-d", #"{"username": "ops", "password": "wrong-password-1234"}"#,
        ])
        #expect(r.stdout.contains("invalid user name, password or TOTP code"))
        r = try await cli.curl([
            "-X", "POST", base + "/v1/auth/login", "-d", #"{"username": "ops", "password": "violet-quarry-ledger-42"}"#,
        ])
        let token = try #require(
            (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["token"] as? String)
        r = try await cli.curl(["-H", "Authorization: Bearer \(token)", base + "/v1/auth/whoami"])
        #expect(r.stdout == #"{"mfaEnrolled":false,"roles":["admin"],"user":"ops"}"#)
        kill(process.processIdentifier, SIGTERM)
        await CLI.waitForExit(process)
        #expect(process.terminationStatus == 0)
        let logged = try String(contentsOf: log, encoding: .utf8)
        #expect(logged.contains("trace") || logged.contains("debug") || logged.contains("info"), "\(logged)")
        for secret in ["violet-quarry-ledger-42", "wrong-password-1234", String(token.split(separator: "_")[2])]
            + shares
        {
            #expect(!logged.contains(secret), "the log holds a secret")
        }
    }

    @Test("SIGTERM lets an in-flight download finish intact, then the server exits 0")
    func gracefulShutdown() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let password = cli.root.appendingPathComponent("pw")
        try Data("violet-quarry-ledger-42\n".utf8).write(to: password)
        let initOut = try await cli.run(
            ["init", cli.vault.path, "--admin", "ops", "--admin-password-file", password.path], vaultFlag: false)
        let shares = CLI.shares(in: initOut.stdout)
        for share in shares.prefix(3) { try await cli.run(["unseal"], stdin: share) }
        let weights = try cli.file("in/weights.bin", size: 8_000_000)
        try await cli.run(["push", weights.path, "--model", "acme/big"])
        try await cli.run(["seal"])

        let (process, base) = try await cli.startServer()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        try await cli.unsealOverHTTPS(base, shares: Array(shares.prefix(3)))
        let login = try await cli.curl([
            "-X", "POST", base + "/v1/auth/login", "-d", #"{"username": "ops", "password": "violet-quarry-ledger-42"}"#,
        ])
        let token = try #require(
            (try JSONSerialization.jsonObject(with: Data(login.stdout.utf8)) as? [String: Any])?["token"] as? String)

        // A download throttled to about 4 s, interrupted after 1 s by SIGTERM.
        let output = cli.root.appendingPathComponent("downloaded.bin")
        let ca = cli.vault.appendingPathComponent("tls/ca.crt").path
        let download = Process()
        download.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        download.arguments = [
            "-s", "--cacert", ca, "--limit-rate", "2M", "-o", output.path, "-w", "%{http_code}",
            "-H", "Authorization: Bearer \(token)", base + "/v1/models/acme/big/versions/1/files/weights.bin",
        ]
        let status = Pipe()
        download.standardOutput = status
        try download.run()
        try await Task.sleep(for: .seconds(1))
        kill(process.processIdentifier, SIGTERM)
        await CLI.waitForExit(download)
        await CLI.waitForExit(process)
        let code = String(decoding: status.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(code == "200")
        #expect(download.terminationStatus == 0)
        #expect(try Data(contentsOf: output) == Data(contentsOf: weights))
        #expect(process.terminationStatus == 0)
        // New connections are refused once it has stopped.
        #expect(try await cli.curl([base + "/v1/sys/health"]).status != 0)
    }

    @Test("a bad config file stops the server before it listens, with a clear error")
    func badConfig() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let config = cli.root.appendingPathComponent("server.json")
        try Data(#"{"listen": {"port": 8443}}"#.utf8).write(to: config)
        var r = try await cli.run(["server", "--config", config.path], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("missing setting 'vault'"))
        try Data(#"{"vault": "\#(cli.root.path)/none"}"#.utf8).write(to: config)
        r = try await cli.run(["server", "--config", config.path], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("is not a ModelVault vault"))
    }
}

struct CLIFailure: Error {
    var message: String
}
