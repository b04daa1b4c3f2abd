import Foundation
import Identity
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The CLI against a real server: login, remote push/pull/ls/show/rm, administration.
@Suite("CLI: remote — login, transfers, administration", .serialized)
struct RemoteTests {
    static let password = "violet-quarry-ledger-42"

    /// A vault with administrator `ops`, served and unsealed.
    struct Served {
        let cli: CLI
        let server: Process
        let base: String
        /// Unseal shares of the vault.
        let shares: [String]
        var ca: String { cli.vault.appendingPathComponent("tls/ca.crt").path }

        /// A login profile directory of its own for each person.
        func env(_ person: String) -> [String: String] {
            ["MVAULT_CONFIG_DIR": cli.root.appendingPathComponent("config-\(person)").path]
        }

        func mvault(_ args: [String], as person: String = "ops", stdin: String? = nil) async throws -> CLI.Result {
            try await cli.run(args, stdin: stdin, vaultFlag: false, environment: env(person))
        }

        func login(_ user: String, password: String = RemoteTests.password) async throws -> CLI.Result {
            try await mvault(["login", "--addr", base, "--ca", ca, "--user", user], as: user, stdin: password)
        }
    }

    func serve(_ body: (Served) async throws -> Void) async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let passwordFile = cli.root.appendingPathComponent("pw")
        try Data("\(Self.password)\n".utf8).write(to: passwordFile)
        let initOut = try await cli.run(
            ["init", cli.vault.path, "--admin", "ops", "--admin-password-file", passwordFile.path], vaultFlag: false)
        let (server, base) = try await cli.startServer(environment: ["MVAULT_CLIENT_CERTIFICATES": "optional"])
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let shares = CLI.shares(in: initOut.stdout)
        try await cli.unsealOverHTTPS(base, shares: Array(shares.prefix(3)))
        try await body(Served(cli: cli, server: server, base: base, shares: shares))
        kill(server.processIdentifier, SIGTERM)
        await CLI.waitForExit(server)
    }

    @Test("which vault a command talks to is said when it is ambiguous, and errors name both ways")
    func whichTarget() async throws {
        try await serve { s in
            #expect(try await s.login("ops").status == 0)
            let elsewhere = s.cli.root.appendingPathComponent("not-a-vault")
            try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
            var environment = s.env("ops")
            environment["MVAULT_VAULT"] = elsewhere.path
            var r = try await s.cli.run(["ls"], vaultFlag: false, environment: environment)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(
                r.stderr.contains(
                    "note: using the server \(s.base) (logged in as ops), not MVAULT_VAULT=\(elsewhere.path); pass --vault \(elsewhere.path) for the local vault"
                ), "\(r.stderr)")
            #expect(!r.stdout.contains("note:"), "notes stay off stdout")
            // Not logged in: the error names both ways.
            environment = s.env("nobody")
            environment["MVAULT_VAULT"] = elsewhere.path
            r = try await s.cli.run(["ls"], vaultFlag: false, environment: environment)
            #expect(r.status == 1)
            #expect(r.stderr.contains("\(elsewhere.path) is not a ModelVault vault"), "\(r.stderr)")
            #expect(r.stderr.contains("mvault init DIR") && r.stderr.contains("mvault login --addr"), "\(r.stderr)")

            // A TLS error says how this user gives the vault's CA.
            let machine = ["MVAULT_ADDR": s.base, "MVAULT_TOKEN": "mvt_x", "MVAULT_CONFIG_DIR": elsewhere.path]
            r = try await s.cli.run(["ls"], vaultFlag: false, environment: machine)
            #expect(r.stderr.contains("set MVAULT_CA=FILE with its certificate, VAULT/tls/ca.crt"), "\(r.stderr)")
            r = try await s.cli.run(["ls"], vaultFlag: false, environment: machine.merging(["MVAULT_CA": s.ca]) { $1 })
            #expect(!r.stderr.contains("TLS with"), "\(r.stderr)")
            // The server's hints name API routes; the CLI names commands.
            #expect(r.stderr.contains("hint: log in again: mvault login --addr"), "\(r.stderr)")
            #expect(!r.stderr.contains("/v1/"), "\(r.stderr)")
            r = try await s.mvault(["login", "--addr", s.base, "--user", "ops"], as: "nobody", stdin: Self.password)
            #expect(r.stderr.contains("pass --ca FILE with its certificate, VAULT/tls/ca.crt"), "\(r.stderr)")
        }
    }

    @Test("what a command prints before it asks for input reaches a pipe before it waits")
    func flushBeforePrompt() async throws {
        try await serve { s in
            #expect(try await s.login("ops").status == 0)
            let process = Process()
            process.executableURL = CLI.binary
            process.arguments = ["user", "mfa", "enroll"]
            process.environment = ProcessInfo.processInfo.environment.merging(s.env("ops")) { $1 }
            let (input, output) = (Pipe(), Pipe())
            (process.standardInput, process.standardOutput, process.standardError) = (input, output, Pipe())
            try process.run()
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            // Should the output not come, end the wait for input, so the test fails instead of hanging.
            let writer = input.fileHandleForWriting
            DispatchQueue.global().asyncAfter(deadline: .now() + 15) { try? writer.close() }
            let reader = output.fileHandleForReading
            let printed = try await offPool {
                var text = ""
                let deadline = Date().addingTimeInterval(20)
                while !text.contains("uri:"), Date() < deadline {
                    let chunk = reader.availableData
                    if chunk.isEmpty { break }
                    text += String(decoding: chunk, as: UTF8.self)
                }
                return text
            }
            #expect(process.isRunning, "still waiting for the code")
            #expect(printed.contains("secret: ") && printed.contains("otpauth://totp/"), "\(printed)")
            try? writer.close()
            await CLI.waitForExit(process)
        }
    }

    @Test("login with MFA: the code is asked for once the password is right; a recovery code works")
    func mfaLogin() async throws {
        try await serve { s in
            func json(_ r: CLI.Result) throws -> [String: Any] {
                try #require(
                    try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
            }
            var r = try await s.cli.curl([
                "-X", "POST", s.base + "/v1/auth/login", "-d", #"{"username": "ops", "password": "\#(Self.password)"}"#,
            ])
            let token = try #require(try json(r)["token"] as? String)
            r = try await s.cli.curl([
                "-X", "POST", "-H", "Authorization: Bearer \(token)", s.base + "/v1/auth/mfa/enroll",
            ])
            let secret = try #require(try json(r)["secret"] as? String)
            let totp = TOTP(secret: try #require(Base32.decode(secret)))
            let step = totp.step(at: Date())
            r = try await s.cli.curl([
                "-X", "POST", "-H", "Authorization: Bearer \(token)", s.base + "/v1/auth/mfa/confirm", "-d",
                #"{"code": "\#(totp.code(forStep: step))"}"#,
            ])
            let codes = try #require(try json(r)["recoveryCodes"] as? [String])
            let login = ["login", "--addr", s.base, "--ca", s.ca, "--user", "ops"]
            // Mistyped codes first: the right one still works after them.
            for _ in 0..<2 {
                r = try await s.mvault(login, stdin: "\(Self.password)\n000000\n")
                #expect(r.status == 1 && r.stderr.contains("invalid user name, password or TOTP code"), "\(r.stderr)")
            }
            r = try await s.mvault(login, stdin: "\(Self.password)\n\(totp.code(forStep: step + 1))\n")
            #expect(r.status == 0, "\(r.stderr)")
            r = try await s.mvault(login + ["--recovery-code"], stdin: "\(Self.password)\n\(codes[0])\n")
            #expect(r.status == 0, "\(r.stderr)")
            // A recovery code typed at the TOTP prompt is taken as one.
            r = try await s.mvault(login, stdin: "\(Self.password)\n\(codes[1])\n")
            #expect(r.status == 0, "\(r.stderr)")
            r = try await s.mvault(login, stdin: "\(Self.password)\n\(codes[1])\n")
            #expect(r.status == 1, "a recovery code works once")
        }
    }

    @Test("login saves a 0600 profile; push, ls, show, pull (resuming) and rm go to the server; logout forgets it")
    func transfers() async throws {
        try await serve { s in
            // Refused logins save nothing.
            var r = try await s.login("ops", password: "not-the-password")
            #expect(r.status == 1)
            #expect(r.stderr.contains("error: invalid user name, password or TOTP code"))
            r = try await s.mvault([
                "login", "--addr", s.base.replacingOccurrences(of: "https", with: "http"), "--user", "ops",
            ])
            #expect(r.stderr.contains("expected https://HOST:PORT"))
            r = try await s.mvault(["login", "--addr", s.base, "--user", "ops"], stdin: Self.password)
            #expect(r.status == 1)
            #expect(r.stderr.contains("pass --ca"), "\(r.stderr)")
            let profile = s.cli.root.appendingPathComponent("config-ops/profile.json")
            #expect(!FileManager.default.fileExists(atPath: profile.path))

            r = try await s.login("ops")
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("logged in to \(s.base) as ops (admin)"))
            let attributes = try FileManager.default.attributesOfItem(atPath: profile.path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let dirAttributes = try FileManager.default.attributesOfItem(
                atPath: profile.deletingLastPathComponent().path)
            #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)
            #expect(!r.stdout.contains("mvsess_"))

            let weights = try s.cli.file("in/weights.bin", size: 8_000_000)
            let config = try s.cli.file("in/config.json", size: 300)
            r = try await s.mvault(["push", weights.path, config.path, "--model", "acme/big", "--note", "v1"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("pushed acme/big@1 (2 file(s), 8.0 MB)"))
            r = try await s.mvault(["ls"])
            #expect(r.stdout == "acme/big  1 version(s)  latest @1\n")
            r = try await s.mvault(["show", "acme/big@1"])
            #expect(r.stdout.contains("weights.bin  8000000 bytes  sha256:"))

            let out = s.cli.root.appendingPathComponent("out")
            r = try await s.mvault(["pull", "acme/big", "-o", out.path])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Data(contentsOf: out.appendingPathComponent("weights.bin")) == Data(contentsOf: weights))
            // Run again, a pull keeps what is already there with the right bytes…
            r = try await s.mvault(["pull", "acme/big", "-o", out.path])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("kept \(out.path)/weights.bin"), "\(r.stdout)")
            // …refuses to replace a file that differs, and replaces it with --force.
            try Data("someone else's file".utf8).write(to: out.appendingPathComponent("weights.bin"))
            r = try await s.mvault(["pull", "acme/big", "-o", out.path])
            #expect(r.status == 1)
            #expect(r.stderr.contains("already exists") && r.stderr.contains("hint: pass --force to overwrite it"))
            r = try await s.mvault(["pull", "acme/big", "-o", out.path, "--force"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Data(contentsOf: out.appendingPathComponent("weights.bin")) == Data(contentsOf: weights))

            // An interrupted pull left the first 3 MB: the next pull fetches only the rest.
            let listing = try await s.mvault(["show", "acme/big@1"]).stdout
            let sha = try #require(
                listing.split(separator: "\n").first { $0.contains("weights.bin") }?.split(separator: ":").last)
            let resumed = s.cli.root.appendingPathComponent("resumed")
            try FileManager.default.createDirectory(at: resumed, withIntermediateDirectories: true)
            let partial = resumed.appendingPathComponent(".weights.bin.\(sha.prefix(16)).mvault-partial")
            try Data(contentsOf: weights).prefix(3_000_000).write(to: partial)
            r = try await s.mvault(["pull", "acme/big@1", "-o", resumed.path])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("resuming weights.bin at 3000000 of 8000000 bytes"))
            #expect(try Data(contentsOf: resumed.appendingPathComponent("weights.bin")) == Data(contentsOf: weights))
            #expect(!FileManager.default.fileExists(atPath: partial.path))

            // A partial file that is not a prefix of the real one fails the digest and is discarded.
            let damaged = s.cli.root.appendingPathComponent("damaged")
            try FileManager.default.createDirectory(at: damaged, withIntermediateDirectories: true)
            let bad = damaged.appendingPathComponent(".weights.bin.\(sha.prefix(16)).mvault-partial")
            try Data(repeating: 7, count: 1000).write(to: bad)
            r = try await s.mvault(["pull", "acme/big@1", "-o", damaged.path])
            #expect(r.status == 1)
            #expect(r.stderr.contains("do not match the recorded SHA-256"))
            #expect(!FileManager.default.fileExists(atPath: bad.path))
            #expect(!FileManager.default.fileExists(atPath: damaged.appendingPathComponent("weights.bin").path))
            r = try await s.mvault(["pull", "acme/big@1", "-o", damaged.path, "--force"])
            #expect(r.status == 0, "\(r.stderr)")

            // Bad input gets the server's error and hint.
            r = try await s.mvault(["show", "acme/nothing"])
            #expect(r.status == 1)
            #expect(r.stderr.contains("error: no model named acme/nothing"))
            r = try await s.mvault(["push", "/nonexistent", "--model", "acme/big"])
            #expect(r.stderr.contains("no such file"))

            r = try await s.mvault(["rm", "acme/big@1"])
            #expect(r.stdout.contains("removed acme/big@1 (2 file(s))"))

            r = try await s.mvault(["logout"])
            #expect(r.stdout == "logged out of \(s.base)\n")
            #expect(!FileManager.default.fileExists(atPath: profile.path))
            r = try await s.mvault(["token", "ls"])
            #expect(r.status == 1)
            #expect(r.stderr.contains("error: not logged in to a server"))
            #expect(r.stderr.contains("hint: log in with `mvault login --addr https://HOST:PORT`"))
        }
    }

    @Test("users, grants, denies, tokens, MFA enrollment and the access review from the CLI")
    func administration() async throws {
        try await serve { s in
            #expect(try await s.login("ops").status == 0)
            var r = try await s.mvault(["user", "add", "bob", "--role", "consumer"], stdin: "1qaz2wsx3edc")
            #expect(r.status == 1)
            #expect(r.stderr.contains("10,000 most common"))
            r = try await s.mvault(["user", "add", "bob", "--role", "consumer"], stdin: Self.password)
            #expect(r.stdout == "created user bob with roles consumer\n", "\(r.stderr)")
            r = try await s.mvault(["user", "ls"])
            #expect(r.stdout.contains("bob  consumer  mfa: no"))

            let model = try s.cli.file("in/model.bin", size: 1000)
            #expect(try await s.mvault(["push", model.path, "--model", "acme/secret-1"]).status == 0)
            #expect(try await s.login("bob").status == 0)
            r = try await s.mvault(["push", model.path, "--model", "acme/x"], as: "bob")
            #expect(r.status == 1)
            #expect(r.stderr.contains("error: access denied: no role or grant allows push on acme/x"))

            r = try await s.mvault(
                ["grant", "add", "--user", "bob", "--pattern", "acme/*", "--capabilities", "push", "--expires", "1h"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try await s.mvault(["push", model.path, "--model", "acme/x"], as: "bob").status == 0)
            r = try await s.mvault(
                ["grant", "add", "--user", "bob", "--pattern", "acme/secret-*", "--capabilities", "pull", "--deny"])
            let denyID = try #require(r.stdout.split(separator: " ").dropFirst(2).first.map(String.init))
            r = try await s.mvault(
                ["pull", "acme/secret-1", "-o", s.cli.root.appendingPathComponent("o").path], as: "bob")
            #expect(r.stderr.contains("error: access denied: grant \(denyID) denies pull on acme/secret-* to user bob"))
            for bad in [
                ["grant", "add", "--pattern", "acme/*", "--capabilities", "pull"],
                ["grant", "add", "--user", "bob", "--pattern", "Acme/*", "--capabilities", "pull"],
                ["grant", "add", "--user", "bob", "--pattern", "acme/*", "--capabilities", "steal"],
                [
                    "grant", "add", "--user", "bob", "--pattern", "acme/*", "--capabilities", "pull", "--expires",
                    "soon",
                ],
            ] {
                r = try await s.mvault(bad)
                #expect(r.status == 1, "\(bad)")
                #expect(r.stderr.hasPrefix("error: "), "\(bad): \(r.stderr)")
            }
            r = try await s.mvault(["grant", "ls"])
            #expect(r.stdout.split(separator: "\n").count == 2)

            r = try await s.mvault(["access", "review", "--user", "bob"])
            #expect(r.stdout.contains("bob  allow list,read,pull on *  via role consumer"))
            #expect(r.stdout.contains("bob  deny pull on acme/secret-*  via grant \(denyID)"))

            // bob's API token pulls with MVAULT_ADDR/MVAULT_TOKEN, within its scope only, until revoked.
            r = try await s.mvault(
                ["token", "create", "ci", "--scope", "acme/x:pull,read", "--expires", "1d"], as: "bob")
            #expect(r.status == 0, "\(r.stderr)")
            let secret = try #require(
                r.stdout.split(separator: "\n").first { $0.hasPrefix("secret") }?.split(separator: " ").last
                    .map(String.init))
            let tokenID = String(secret.split(separator: "_")[1])
            let machine = ["MVAULT_ADDR": s.base, "MVAULT_TOKEN": secret, "MVAULT_CA": s.ca]
            let out = s.cli.root.appendingPathComponent("machine")
            r = try await s.cli.run(["pull", "acme/x", "-o", out.path], vaultFlag: false, environment: machine)
            #expect(r.status == 0, "\(r.stderr)")
            r = try await s.cli.run(["push", model.path, "--model", "acme/x"], vaultFlag: false, environment: machine)
            #expect(r.stderr.contains("token \(tokenID) is not scoped for push on acme/x"))
            r = try await s.mvault(["token", "ls"], as: "bob")
            #expect(
                r.stdout.contains("\(tokenID)  ci  acme/x:read,pull")
                    || r.stdout.contains("\(tokenID)  ci  acme/x:pull"))
            #expect(!r.stdout.contains(secret))
            #expect(try await s.mvault(["token", "revoke", tokenID], as: "bob").status == 0)
            r = try await s.cli.run(["ls"], vaultFlag: false, environment: machine)
            #expect(r.stderr.contains("error: token \(tokenID) was revoked"))

            // MFA enrollment shows a QR code and the URI; the secret it shows is the pending one.
            r = try await s.mvault(["user", "mfa", "enroll"], as: "bob", stdin: "")
            #expect(r.status == 1)
            #expect(r.stdout.contains("otpauth://totp/ModelVault%3Abob?secret="))
            #expect(r.stdout.contains("█") && r.stdout.contains("▀"))
            #expect(r.stderr.contains("no code given"))

            // A client certificate authenticates a machine as bob until it is revoked.
            let certs = s.cli.root.appendingPathComponent("certs")
            r = try await s.mvault(["cert", "issue", "bob", "--days", "7", "--out", certs.path])
            #expect(r.status == 0, "\(r.stderr)")
            let serial = try #require(r.stdout.split(separator: " ").dropFirst().first.map(String.init))
            let keyPath = certs.appendingPathComponent("bob.key").path
            #expect((try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int) == 0o600)
            let withCertificate = [
                "MVAULT_ADDR": s.base, "MVAULT_CA": s.ca, "MVAULT_CLIENT_CERT": certs.path + "/bob.crt",
                "MVAULT_CLIENT_KEY": keyPath,
            ]
            r = try await s.cli.run(["ls"], vaultFlag: false, environment: withCertificate)
            #expect(r.stdout.contains("acme/x"), "\(r.stderr)")
            r = try await s.mvault(["cert", "ls"])
            #expect(r.stdout.contains("\(serial)  bob  expires"))
            #expect(try await s.mvault(["cert", "revoke", serial]).status == 0)
            r = try await s.cli.run(["ls"], vaultFlag: false, environment: withCertificate)
            #expect(r.stderr.contains("error: client certificate \(serial) was revoked"))
            r = try await s.mvault(["cert", "issue", "bob", "--out", certs.path])
            #expect(r.stderr.contains("already exists") && r.stderr.contains("hint: pass --force to overwrite it"))
            r = try await s.mvault(["cert", "issue", "bob", "--out", certs.path, "--force"])
            #expect(r.status == 0, "the hint's option exists: \(r.stderr)")

            // Lists print the server's own JSON with --json.
            for (args, key) in [
                (["user", "ls"], "users"), (["role", "ls"], "roles"), (["grant", "ls"], "grants"),
                (["token", "ls"], "tokens"), (["cert", "ls"], "certificates"), (["access", "review"], "entries"),
            ] {
                r = try await s.mvault(args + ["--json"])
                let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
                #expect(object?[key] is [Any], "\(args): \(r.stdout) \(r.stderr)")
            }

            // Roles: created, refused while held, removed.
            r = try await s.mvault(["role", "create", "ml", "--capabilities", "list,read", "--require-mfa"])
            #expect(r.stdout == "created role ml  list,read  requires MFA\n")
            #expect(try await s.mvault(["user", "roles", "bob", "--role", "ml"]).status == 0)
            r = try await s.mvault(["role", "rm", "ml"])
            #expect(r.stderr.contains("error: role ml is held by bob"))
            #expect(try await s.mvault(["user", "rm", "bob"]).stdout == "deleted user bob\n")
            #expect(try await s.mvault(["role", "rm", "ml"]).stdout == "deleted role ml\n")
            r = try await s.mvault(["grant", "ls"])
            #expect(r.stdout == "no grants\n")
        }
    }
}
