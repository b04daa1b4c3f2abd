import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real rsyslog (Debian's rsyslogd) with a TCP and a TLS input, each writing what it receives,
/// one raw message per line, to a file of its own.
struct Rsyslog {
    let directory: URL
    let tcpPort: Int
    let tlsPort: Int
    var process: Process?

    static var available: Bool { FileManager.default.fileExists(atPath: "/usr/sbin/rsyslogd") }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    init(directory: URL, certificate: String, key: String, ca: String) throws {
        self.directory = directory
        tcpPort = try Self.freePort()
        tlsPort = try Self.freePort()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let d = directory.path
        let config = """
            global(workDirectory="\(d)" DefaultNetstreamDriverCAFile="\(ca)"
                   DefaultNetstreamDriverCertFile="\(certificate)" DefaultNetstreamDriverKeyFile="\(key)")
            module(load="imtcp")
            template(name="raw" type="string" string="%rawmsg%\\n")
            ruleset(name="tcp") { action(type="omfile" file="\(d)/tcp.log" template="raw") }
            ruleset(name="tls") { action(type="omfile" file="\(d)/tls.log" template="raw") }
            input(type="imtcp" port="\(tcpPort)" ruleset="tcp")
            input(type="imtcp" port="\(tlsPort)" ruleset="tls" streamDriver.name="ossl" streamDriver.mode="1"
                  streamDriver.authMode="anon")
            """
        try Data(config.utf8).write(to: directory.appendingPathComponent("rsyslog.conf"))
    }

    mutating func start() async throws {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("pid"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/rsyslogd")
        p.arguments = [
            "-n", "-f", directory.appendingPathComponent("rsyslog.conf").path, "-i",
            directory.appendingPathComponent("pid").path,
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // Listening once a connection is accepted.
        for _ in 0..<100 {
            let r = try await CLI.system(
                ["/usr/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\(tcpPort)"], cwd: directory)
            if r.status == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CLIFailure(message: "rsyslogd did not start listening")
    }

    /// Kills the receiver outright (a crash: what it had not written out yet is gone too). The test
    /// process's children inherit a blocked SIGTERM, so SIGKILL it is.
    mutating func stop() async {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        await CLI.waitForExit(p)
        process = nil
    }

    func lines(_ name: String) -> [String] {
        ((try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? "").split(
            separator: "\n"
        ).map(String.init)
    }
}

@Suite("CLI: audit events into a real rsyslog over TCP and TLS, and into files", .serialized)
struct SIEMTests {
    static func seq(of line: String) -> Int? {
        guard let range = line.range(of: "seq=\"") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    @Test(
        "every event arrives in order and parses; neither a receiver restart nor a server restart loses any",
        .enabled(if: Rsyslog.available, "needs rsyslog with TLS (apt-get install rsyslog rsyslog-openssl)"))
    func rsyslog() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        let passwordFile = cli.root.appendingPathComponent("pw")
        try Data("\(RemoteTests.password)\n".utf8).write(to: passwordFile)
        let initOut = try await cli.run(
            ["init", cli.vault.path, "--admin", "ops", "--admin-password-file", passwordFile.path], vaultFlag: false)
        let tlsDir = cli.vault.appendingPathComponent("tls").path
        var receiver = try Rsyslog(
            directory: cli.root.appendingPathComponent("rsyslog"), certificate: tlsDir + "/server.crt",
            key: tlsDir + "/server.key", ca: tlsDir + "/ca.crt")
        try await receiver.start()
        defer { if let p = receiver.process { kill(p.processIdentifier, SIGKILL) } }
        let config: [String: Any] = [
            "vault": cli.vault.path,
            "audit": [
                "checkpointEvery": 50,
                "sinks": [
                    ["type": "syslog", "address": "127.0.0.1:\(receiver.tcpPort)", "format": "json"],
                    [
                        "type": "syslog", "address": "127.0.0.1:\(receiver.tlsPort)", "tls": true, "ca": "tls/ca.crt",
                        "format": "ocsf",
                    ],
                    ["type": "file", "path": cli.root.appendingPathComponent("audit.jsonl").path, "format": "json"],
                    ["type": "file", "path": cli.root.appendingPathComponent("audit.cef").path, "format": "cef"],
                ],
            ],
        ]
        let configFile = cli.root.appendingPathComponent("server.json")
        try JSONSerialization.data(withJSONObject: config).write(to: configFile)
        var (server, base) = try await cli.startServer(arguments: ["--config", configFile.path])
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let shares = Array(CLI.shares(in: initOut.stdout).prefix(3))
        try await cli.unsealOverHTTPS(base, shares: shares)
        let env = ["MVAULT_CONFIG_DIR": cli.root.appendingPathComponent("config").path]
        let ca = cli.vault.appendingPathComponent("tls/ca.crt").path
        func mvault(_ args: [String], stdin: String? = nil) async throws -> CLI.Result {
            try await cli.run(args, stdin: stdin, vaultFlag: false, environment: env)
        }
        #expect(
            try await mvault(["login", "--addr", base, "--ca", ca, "--user", "ops"], stdin: RemoteTests.password).status
                == 0)
        #expect(
            try await mvault(["login", "--addr", base, "--ca", ca, "--user", "ops"], stdin: "wrong password!!").status
                == 1)
        let model = try cli.file("in/model.bin", size: 2000)
        #expect(try await mvault(["push", model.path, "--model", "acme/x"]).status == 0)
        for _ in 0..<5 { _ = try await mvault(["ls"]) }

        let entries = cli.vault.appendingPathComponent("audit/entries.jsonl")
        func logged() -> [String] {
            ((try? String(contentsOf: entries, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        /// Waits until every entry in the log has reached both rsyslog inputs.
        func delivered() async throws -> Bool {
            for _ in 0..<200 {
                let count = logged().count
                let tcp = Set(receiver.lines("tcp.log").compactMap(Self.seq))
                let tls = Set(receiver.lines("tls.log").compactMap(Self.seq))
                if count > 0, tcp.isSuperset(of: 0..<count), tls.isSuperset(of: 0..<count) { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        #expect(try await delivered(), "before the restart")

        // The receiver goes away; events keep coming; it comes back.
        await receiver.stop()
        for _ in 0..<5 { _ = try await mvault(["ls"]) }
        let whileDown = logged().count
        try await Task.sleep(for: .milliseconds(300))
        try await receiver.start()
        _ = try await mvault(["ls"])
        #expect(try await delivered(), "after the restart")
        #expect(logged().count > whileDown)

        // The receiver goes away again, and then the server stops: what the receiver missed is
        // in the log, and the restarted server's sinks take up where they left off.
        await receiver.stop()
        for _ in 0..<5 { _ = try await mvault(["ls"]) }
        let beforeServerRestart = logged().count
        kill(server.processIdentifier, SIGTERM)
        await CLI.waitForExit(server)
        let restarted = try await cli.startServer(arguments: ["--config", configFile.path])
        defer { if restarted.0.isRunning { kill(restarted.0.processIdentifier, SIGKILL) } }
        (server, base) = restarted
        try await cli.unsealOverHTTPS(base, shares: shares)
        try await receiver.start()
        #expect(try await delivered(), "after the server's restart")
        #expect(logged().count > beforeServerRestart)

        // What arrived: RFC 5424 with the JSON entry as MSG (TCP); OCSF (TLS); the log's own JSON
        // and CEF in files. No password anywhere.
        let log = logged()
        let tcp = receiver.lines("tcp.log")
        let first = try #require(tcp.first { Self.seq(of: $0) == 0 })
        #expect(
            first.hasPrefix("<8")
                && first.contains(" mvault - response [mvault@32473 seq=\"0\"] {\"action\":\"POST /v1/sys/unseal\""),
            "\(first)")
        let message = String(try #require(first.range(of: "] ").map { first[$0.upperBound...] }))
        #expect(message == log[0])
        let ocsf = try receiver.lines("tls.log").map { line -> [String: Any] in
            let json = String(line[line.range(of: "] ")!.upperBound...])
            return try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        }
        let failedLogin = try #require(ocsf.first { $0["class_uid"] as? Int == 3002 && $0["status_id"] as? Int == 2 })
        #expect(failedLogin["type_uid"] as? Int == 300_201)
        #expect((failedLogin["user"] as? [String: Any])?["name"] as? String == "ops")
        #expect(
            ocsf.contains {
                $0["class_uid"] as? Int == 6003
                    && ($0["api"] as? [String: Any])?["operation"] as? String == "GET /v1/models"
            })
        try await Task.sleep(for: .milliseconds(200))
        let jsonFile = try String(contentsOf: cli.root.appendingPathComponent("audit.jsonl"), encoding: .utf8).split(
            separator: "\n"
        ).map(String.init)
        // (A batch written just before the server stopped may come again after its restart.)
        var seen = Set<String>()
        #expect(Array(jsonFile.filter { seen.insert($0).inserted }.prefix(log.count)) == log)
        let cef = try String(contentsOf: cli.root.appendingPathComponent("audit.cef"), encoding: .utf8).split(
            separator: "\n")
        #expect(cef.count >= log.count)
        #expect(cef.allSatisfy { $0.hasPrefix("CEF:0|ModelVault|mvault|0.1.0|") })
        #expect(cef.contains { $0.contains("suser=ops") && $0.contains("cn1=401") })
        for text in [tcp.joined(), receiver.lines("tls.log").joined(), cef.joined(), jsonFile.joined()] {
            #expect(!text.contains(RemoteTests.password) && !text.contains("wrong password!!"))
        }
        kill(server.processIdentifier, SIGTERM)
        await CLI.waitForExit(server)
    }

    @Test("a sink without what it needs stops the server before it listens, naming it")
    func badSink() async throws {
        let cli = try CLI()
        defer { cli.cleanup() }
        _ = try await cli.initVault()
        for (sink, message) in [
            (["type": "syslog"], "audit.sinks[0]: a syslog sink needs \"address\": \"host:port\""),
            (["type": "file"], "audit.sinks[0]: a file sink needs \"path\""),
            (["type": "kafka"], "setting 'audit.sinks"),
        ] {
            let file = cli.root.appendingPathComponent("bad.json")
            try JSONSerialization.data(withJSONObject: ["vault": cli.vault.path, "audit": ["sinks": [sink]]]).write(
                to: file)
            let r = try await cli.run(["server", "--config", file.path], vaultFlag: false)
            #expect(r.status == 1)
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
    }
}
