import AsyncHTTPClient
import AuditLog
import Foundation
import Keyring
import Testing
import VaultCore
import VaultServer

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Server: the audit trail", .serialized)
struct AuditTests {
    static func entries(_ f: ServerFixture, directory: URL? = nil) throws -> [AuditEvent] {
        let layout = AuditLogLayout(directory: directory ?? f.root.appendingPathComponent("vault/audit"))
        return try String(contentsOf: layout.entries, encoding: .utf8).split(separator: "\n").map {
            try AuditEvent.decode(Array($0.utf8))
        }
    }

    /// The alert entries, once at least `count` are in the log (alerts are recorded in the
    /// background), waiting up to 10 s for them.
    static func alerts(_ f: ServerFixture, atLeast count: Int) async throws -> [AuditEvent] {
        var alerts: [AuditEvent] = []
        for _ in 0..<100 {
            alerts = try entries(f).filter { $0.phase == "alert" }
            if alerts.count >= count { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return alerts
    }

    @Test("every request leaves its decision and outcome; secrets never appear; checkpoints and proofs verify")
    func trail() async throws {
        try await ServerFixture.with(audit: .init(checkpointEvery: 10, checkpointSeconds: 3600)) { f in
            let (tokens, _) = try await ModelAccessTests().prepare(f)
            var r = try await f.request(
                .POST, "/v1/auth/login", body: #"{"username": "mallory", "password": "guess-guess-guess"}"#)
            #expect(r.status == 401)
            r = try await f.request(
                .GET, "/v1/models/acme/demo/versions/1/files/weights.bin", token: tokens["consumer"])
            #expect(r.status == 200)
            r = try await f.request(.POST, "/v1/models/acme/demo/uploads", body: "", token: tokens["consumer"])
            #expect(r.status == 403)
            r = try await f.request(.GET, "/v1/models", token: "mvsess_not-a-real-token")
            #expect(r.status == 401)
            _ = try await f.request(.GET, "/v1/sys/health")

            // Read by an auditor over the API; refused to a consumer.
            r = try await f.request(.GET, "/v1/audit/entries?limit=10000", token: tokens["auditor"])
            #expect(r.status == 200)
            #expect(try await f.request(.GET, "/v1/audit/entries", token: tokens["consumer"]).status == 403)
            let events = try Self.entries(f)
            #expect(events.map(\.seq) == Array(0..<events.count))
            #expect((r.json["entries"] as? [Any])?.count == r.json["size"] as? Int)

            // Unseal attempts, from before the log could open, come first.
            #expect(events.prefix(2).allSatisfy { $0.action == "POST /v1/sys/unseal" && $0.result?.status == 200 })
            #expect(!events.contains { $0.action.hasPrefix("GET /v1/sys/health") })
            let failedLogin = try #require(events.first { $0.actor.user == "mallory" })
            #expect(failedLogin.action == "POST /v1/auth/login" && failedLogin.result?.status == 401)
            #expect(failedLogin.sourceIP == "127.0.0.1")

            // A read is one entry with the decision and the outcome.
            let pull = try #require(events.first { $0.phase == "access" && $0.target?.file == "weights.bin" })
            #expect(pull.actor.user == "u-consumer")
            #expect(pull.decision == .init(allowed: true, rule: "role consumer allows pull on *"))
            #expect(pull.target?.model == "acme/demo" && pull.target?.version == 1)
            #expect(pull.hashed?["session"]?.hasPrefix("hmac-sha256:") == true)
            #expect(events.filter { $0.requestID == pull.requestID }.count == 1)
            #expect(pull.result?.status == 200 && pull.result?.bytes == 3_000_000)
            #expect(pull.target?.sha256?.first?.count == 64)

            let denied = try #require(events.first { $0.decision?.allowed == false })
            #expect(denied.action == "POST /v1/models/{namespace}/{name}/uploads")
            #expect(denied.decision?.rule.contains("no role or grant allows push on acme/demo") == true)
            #expect(events.contains { $0.requestID == denied.requestID && $0.result?.status == 403 })
            #expect(
                events.contains { $0.actor.user == nil && $0.result?.status == 401 && $0.action == "GET /v1/models" })

            // No password, session token or API token is in the log; the session's HMAC is, and
            // the hash endpoint finds it.
            let raw = try String(
                contentsOf: f.root.appendingPathComponent("vault/audit/entries.jsonl"), encoding: .utf8)
            #expect(!raw.contains(f.adminPassword) && !raw.contains("guess-guess-guess"))
            for token in tokens.values { #expect(!raw.contains(token)) }
            #expect(!raw.contains("mvsess_not-a-real-token"))
            let sessionID = String(tokens["consumer"]!.split(separator: "_")[1].split(separator: ".")[0])
            r = try await f.request(
                .POST, "/v1/audit/hash", body: #"{"value": "\#(sessionID)"}"#, token: tokens["auditor"])
            let hmac = try #require(r.json["hmac"] as? String)
            #expect(pull.hashed?["session"] == hmac, "\(sessionID)")

            // A checkpoint signed now verifies with the vault's verifier key; proofs check against it.
            let verifierText = try String(
                contentsOf: f.root.appendingPathComponent("vault/audit/verifier.key"), encoding: .utf8)
            let verifier = try CheckpointVerifier(encoded: verifierText)
            let note = try await f.raw(.GET, "/v1/audit/checkpoint", token: tokens["auditor"])
            let checkpoint = try Checkpoint.verify(String(decoding: note.body, as: UTF8.self), key: verifier)
            #expect(checkpoint.size >= events.count)
            r = try await f.request(
                .GET, "/v1/audit/proof/inclusion?index=3&size=\(checkpoint.size)", token: tokens["auditor"])
            let proof = try #require(r.json["proof"] as? [String]).map { Hex.decode($0)! }
            let leaf = Hex.decode(try #require(r.json["leaf"] as? String))!
            #expect(
                MerkleTree.verifyInclusion(
                    leaf: leaf, index: 3, size: checkpoint.size, proof: proof, root: checkpoint.root))
            r = try await f.request(
                .GET, "/v1/audit/proof/consistency?first=10&second=\(checkpoint.size)", token: tokens["auditor"])
            let first = try Checkpoint.verify(
                String(
                    contentsOf: AuditLogLayout(directory: f.root.appendingPathComponent("vault/audit")).checkpointFile(
                        size: 10), encoding: .utf8),
                key: verifier)
            let consistency = try #require(r.json["proof"] as? [String]).map { Hex.decode($0)! }
            #expect(
                MerkleTree.verifyConsistency(
                    first: 10, second: checkpoint.size, firstRoot: first.root, secondRoot: checkpoint.root,
                    proof: consistency))
            r = try await f.request(.GET, "/v1/audit/proof/inclusion?index=999999", token: tokens["auditor"])
            #expect(r.status == 400)
            let report = try AuditVerifier.verify(
                layout: AuditLogLayout(directory: f.root.appendingPathComponent("vault/audit")), verifier: verifier)
            #expect(report.problem == nil && report.checkpointsChecked >= 2)
        }
    }

    @Test("a normal day raises no alert; brute force and touching a canary model raise theirs")
    func alerts() async throws {
        try await ServerFixture.with(audit: .init(checkpointSeconds: 3600, canaryModels: ["acme/de*"])) { f in
            // A normal day: everyone logs in, models are listed, nothing else.
            let (tokens, _) = try await ModelAccessTests().prepare(f)
            for role in ["consumer", "publisher", "auditor"] {
                #expect(try await f.request(.GET, "/v1/models", token: tokens[role]).status == 200)
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try Self.entries(f).filter { $0.phase == "alert" }.isEmpty)

            // The attack: password guessing, then a look at the decoy.
            for _ in 0..<6 {
                _ = try await f.request(
                    .POST, "/v1/auth/login", body: #"{"username": "admin", "password": "letmein-letmein"}"#)
            }
            #expect(try await f.request(.GET, "/v1/models/acme/demo", token: tokens["consumer"]).status == 200)
            let alerts = try await Self.alerts(f, atLeast: 2)
            let brute = try #require(alerts.first { $0.action == "alert.brute-force" })
            #expect(
                brute.target?.name == "account:admin" && brute.sourceIP == "127.0.0.1" && brute.actor.user == "admin")
            #expect(alerts.filter { $0.action == "alert.brute-force" }.count == 1)
            let canary = try #require(alerts.first { $0.action == "alert.canary" })
            #expect(canary.actor.user == "u-consumer" && canary.target?.model == "acme/demo")
            #expect(canary.result?.error?.contains("the decoy model acme/demo was touched") == true)
        }
    }

    static var canMountTmpfs: Bool { getuid() == 0 && FileManager.default.fileExists(atPath: "/bin/mount") }

    @Test(
        "fail closed: with the audit log's disk full, requests are refused and nothing changes; room again, they work",
        .enabled(if: canMountTmpfs, "needs root and mount, for a small tmpfs"))
    func failClosed() async throws {
        var mountPoint: URL?
        defer {
            if let mountPoint {
                _ = try? Process.run(URL(fileURLWithPath: "/bin/umount"), arguments: ["-l", mountPoint.path])
                    .waitUntilExit()
                // The fixture could not remove its directory while the tmpfs was mounted in it.
                try? FileManager.default.removeItem(at: mountPoint.deletingLastPathComponent())
            }
        }
        try await ServerFixture.with(
            audit: .init(directory: "../auditfs", checkpointEvery: 1000, checkpointSeconds: 3600),
            before: { root in
                let point = root.appendingPathComponent("auditfs")
                try FileManager.default.createDirectory(at: point, withIntermediateDirectories: true)
                let mount = try Process.run(
                    URL(fileURLWithPath: "/bin/mount"),
                    arguments: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", point.path])
                mount.waitUntilExit()
                #expect(mount.terminationStatus == 0)
                mountPoint = point
            }
        ) { f in
            try await f.unseal()
            let admin = try await f.login("admin")
            let directory = f.root.appendingPathComponent("auditfs")
            // Fill the audit log's disk.
            let filler = directory.appendingPathComponent("filler")
            let fd = open(filler.path, O_WRONLY | O_CREAT, 0o600)
            let block = [UInt8](repeating: 0x55, count: 4096)
            while write(fd, block, block.count) > 0 {}
            close(fd)
            // The log's last page still has room for a few entries; then nothing fits.
            var r = try await f.request(.GET, "/v1/models", token: admin)
            for _ in 0..<100 where r.status == 200 { r = try await f.request(.GET, "/v1/models", token: admin) }
            let before = try Self.entries(f, directory: directory).count
            #expect(r.status == 503, "\(r.json)")
            #expect(
                (r.json["error"] as? String)?.contains("the audit log cannot record this request, so it is refused")
                    == true)
            r = try await f.send(
                .POST, "/v1/users", ["name": "eve", "password": f.adminPassword, "roles": ["admin"]], token: admin)
            #expect(r.status == 503)
            #expect(try Self.entries(f, directory: directory).count == before)

            // Room again: requests go through, and eve was never created.
            try FileManager.default.removeItem(at: filler)
            r = try await f.request(.GET, "/v1/users", token: admin)
            #expect(r.status == 200)
            #expect(!((r.json["users"] as? [[String: Any]]) ?? []).contains { $0["name"] as? String == "eve" })
            let layout = AuditLogLayout(directory: directory)
            let verifier = try CheckpointVerifier(encoded: String(contentsOf: layout.verifierKey, encoding: .utf8))
            #expect(try AuditVerifier.verify(layout: layout, verifier: verifier).problem == nil)
            #expect(try Self.entries(f, directory: directory).count > before)
        }
    }
}
