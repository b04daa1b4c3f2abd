import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("CLI: mvault server", .serialized)
struct ServerCommandTests {
    @Test("the binary serves HTTPS on the port it prints, unseals through curl, and exits cleanly on SIGTERM")
    func serveAndStop() throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let shares = try cli.initVault()
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["server"]
        process.environment = ["MVAULT_VAULT": cli.vault.path, "MVAULT_LISTEN": "127.0.0.1:0"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        // Read until the listening line names the port.
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while !text.contains("trust the vault CA"), Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let base = try #require(
            text.split(separator: "\n").first { $0.contains("listening on https://") }?
                .split(separator: " ").first { $0.hasPrefix("https://") }.map(String.init))
        #expect(!base.hasSuffix(":0"))
        let ca = cli.vault.appendingPathComponent("tls/ca.crt").path

        func curl(_ args: [String]) throws -> CLI.Result {
            try CLI.system(["/usr/bin/curl", "-s", "--cacert", ca, "--max-time", "10"] + args, cwd: cli.root)
        }
        var r = try curl([base + "/v1/sys/seal-status"])
        #expect(r.stdout.contains("\"sealed\":true"))
        for share in shares.prefix(3) {
            r = try curl(["-X", "POST", base + "/v1/sys/unseal", "-d", "{\"share\": \"\(share)\"}"])
        }
        #expect(r.stdout.contains("\"sealed\":false"), "\(r.stdout)")
        r = try curl(["-o", "/dev/null", "-w", "%{http_code}", base + "/v1/sys/health"])
        #expect(r.stdout == "200")
        // Without the vault CA, curl refuses the server's certificate.
        let untrusted = try CLI.system(
            ["/usr/bin/curl", "-s", "--max-time", "10", base + "/v1/sys/health"], cwd: cli.root)
        #expect(untrusted.status == 60)

        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }

    @Test("a bad config file stops the server before it listens, with a clear error")
    func badConfig() throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let config = cli.root.appendingPathComponent("server.json")
        try Data(#"{"listen": {"port": 8443}}"#.utf8).write(to: config)
        var r = try cli.run(["server", "--config", config.path], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("missing setting 'vault'"))
        try Data(#"{"vault": "\#(cli.root.path)/none"}"#.utf8).write(to: config)
        r = try cli.run(["server", "--config", config.path], vaultFlag: false)
        #expect(r.status == 1)
        #expect(r.stderr.contains("is not a ModelVault vault"))
    }
}
