import AuditLog
import Foundation
import Keyring
import NIOCore
import NIOHTTP1
import Testing
import VaultCore
import VaultServices

@testable import VaultServer

/// Requests that once made the server exit, or let a small right grow into a large one. Each
/// must be answered with a clear 4xx, and the server must still serve the next request.
@Suite("Server: hostile requests are refused, and the server stays up", .serialized)
struct HostileRequestTests {
    static let weights = Data((0..<100).map { UInt8($0) })

    /// Unseals, pushes acme/demo@1 (weights.bin, 100 bytes) as admin; returns the admin's session.
    func prepare(_ f: ServerFixture) async throws -> String {
        try await f.unseal()
        let admin = try await f.login("admin")
        try await upload(f, "acme/demo", ["weights.bin": Self.weights], token: admin)
        return admin
    }

    /// Uploads `files` as a new version of `model`, expecting it to be committed.
    @discardableResult
    func upload(_ f: ServerFixture, _ model: String, _ files: [String: Data], token: String) async throws
        -> ServerFixture.Reply
    {
        let r = try await f.upload(model, files, token: token)
        #expect(r.status == 201, "\(r.json)")
        return r
    }

    func error(_ reply: ServerFixture.Reply) -> String { reply.json["error"] as? String ?? "" }

    /// The server still answers, and its audit log still verifies.
    func expectAlive(_ f: ServerFixture, _ admin: String) async throws {
        #expect(try await f.request(.GET, "/v1/sys/health").status == 200)
        let checkpoint = try await f.request(.GET, "/v1/audit/checkpoint", token: admin)
        #expect(checkpoint.status == 200)
    }

    func addUser(_ f: ServerFixture, _ name: String, roles: [String], admin: String) async throws -> String {
        let r = try await f.send(
            .POST, "/v1/users", ["name": name, "password": ServerFixture.adminPassword, "roles": roles], token: admin)
        #expect(r.status == 201, "\(r.json)")
        return try await f.login(name)
    }

    // MARK: crashes

    @Test("a token's rate is bounded at creation, and a rate stored before cannot overflow the wait")
    func tokenRate() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let nobody = try await addUser(f, "nobody", roles: [], admin: admin)
            for rate in [1e-19, 0.0, -1.0, 1e300] {
                let r = try await f.send(
                    .POST, "/v1/tokens",
                    [
                        "name": "slow", "requestsPerSecond": rate,
                        "scopes": [["pattern": "*", "capabilities": ["read"]]],
                    ],
                    token: nobody)
                #expect(r.status == 400, "\(rate): \(r.json)")
                #expect(error(r).hasPrefix("requestsPerSecond must be from 0.01 to 100000"), "\(r.json)")
            }
            let tokens = try await f.request(.GET, "/v1/tokens", token: nobody)
            #expect((tokens.json["tokens"] as? [Any])?.isEmpty == true, "nothing was stored")
            try await expectAlive(f, admin)
        }
        // A token stored with such a rate before the bound: the second use waits a day at most.
        let limiter = RateLimiter(perSecond: 1, burst: 1)
        #expect(limiter.take("token:t", perSecond: 1e-19, burst: 1) == nil)
        #expect(limiter.take("token:t", perSecond: 1e-19, burst: 1) == 86_400)
        #expect(RateLimiter.retryAfter(.nan) == 86_400)
        #expect(RateLimiter.retryAfter(0.2) == 1)
    }

    @Test("Range follows RFC 9110 on GET and HEAD: clamped, ignored or 416, never a crash")
    func ranges() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let path = "/v1/models/acme/demo/versions/1/files/weights.bin"
            let cases: [(String, Int, String?, Range<Int>)] = [
                ("bytes=5-18446744073709551615", 206, "bytes 5-99/100", 5..<100),
                ("bytes=5-99999999999999999999999", 206, "bytes 5-99/100", 5..<100),
                ("bytes=90-", 206, "bytes 90-99/100", 90..<100),
                ("bytes=-10", 206, "bytes 90-99/100", 90..<100),
                ("bytes=0-0", 206, "bytes 0-0/100", 0..<1),
                ("bytes=0-1,5-6", 200, nil, 0..<100),
                ("items=0-1", 200, nil, 0..<100),
                ("bytes=9-3", 200, nil, 0..<100),
                ("bytes=abc", 200, nil, 0..<100),
                ("bytes=100-", 416, "bytes */100", 0..<0),
                ("bytes=18446744073709551615-", 416, "bytes */100", 0..<0),
                ("bytes=-0", 416, "bytes */100", 0..<0),
            ]
            for (header, status, contentRange, bytes) in cases {
                for method in [HTTPMethod.GET, .HEAD] {
                    let r = try await f.raw(method, path, token: admin, headers: ["Range": header])
                    #expect(r.status == status, "\(method) \(header)")
                    #expect(r.headers["content-range"] == contentRange, "\(method) \(header)")
                    if method == .GET, status != 416 {
                        #expect(r.body == Self.weights[bytes], "\(header)")
                    }
                }
            }
            // Conditional requests: a list or a weak tag in If-None-Match, and If-Range with another tag.
            let whole = try await f.raw(.GET, path, token: admin)
            let etag = try #require(whole.headers["etag"])
            for condition in [etag, "\"x\", \(etag)", "W/\(etag)", "*"] {
                #expect(try await f.raw(.GET, path, token: admin, headers: ["If-None-Match": condition]).status == 304)
            }
            let other = try await f.raw(.GET, path, token: admin, headers: ["Range": "bytes=0-9", "If-Range": "\"x\""])
            #expect(other.status == 200 && other.body == Self.weights)
            try await expectAlive(f, admin)
        }
    }

    @Test("audit proof parameters outside the log are a 400")
    func auditProofs() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let queries = [
                "inclusion?index=0&size=-1", "inclusion?index=-1", "inclusion?index=0&size=99999999999",
                "inclusion?index=99999999999999999999", "inclusion", "inclusion?index=x",
                "consistency?first=1&second=-5", "consistency?second=-5", "consistency?first=0",
                "consistency?first=5&second=2", "consistency?first=1&second=9223372036854775807",
            ]
            for query in queries {
                let r = try await f.request(.GET, "/v1/audit/proof/\(query)", token: admin)
                #expect(r.status == 400, "\(query): \(r.json)")
                #expect(!error(r).isEmpty, "\(query)")
            }
            for query in ["start=-1", "limit=0", "limit=-5", "start=9223372036854775807"] {
                #expect(try await f.request(.GET, "/v1/audit/entries?\(query)", token: admin).status == 400, "\(query)")
            }
            #expect(try await f.request(.GET, "/v1/audit/proof/inclusion?index=0", token: admin).status == 200)
            try await expectAlive(f, admin)
        }
    }

    // MARK: the upload lifecycle

    /// Staged files the vault holds right now.
    func staged(_ f: ServerFixture) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: f.root.appendingPathComponent("vault/tmp").path)) ?? []
    }

    @Test("an upload aborted while its commit's body is on the way: the commit gets 409, nothing is kept")
    func commitRacingAbort() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let id = try await f.startUpload("acme/race", token: admin)
            #expect(
                try await f.put("/v1/models/acme/race/uploads/\(id)/files/a.bin", Self.weights, token: admin).status
                    == 201)
            let commit = f.streaming(.POST, "/v1/models/acme/race/uploads/\(id)/commit", token: admin)
            try await f.awaitRequestEntry("POST /v1/models/{namespace}/{name}/uploads/{upload}/commit", token: admin)
            #expect(try await f.request(.DELETE, "/v1/models/acme/race/uploads/\(id)", token: admin).status == 204)
            commit.body.yield(ByteBuffer(string: "{}"))
            commit.body.finish()
            let r = try await commit.reply.value
            #expect(r.status == 409, "\(r.json)")
            #expect(error(r) == "upload \(id) was committed or aborted")
            #expect(try await f.request(.GET, "/v1/models/acme/race", token: admin).status == 404)
            #expect(staged(f).isEmpty)
            try await expectAlive(f, admin)
        }
    }

    @Test("an upload ends once: a second commit or an abort afterwards gets 409 and names the outcome")
    func endsOnce() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let id = try await f.startUpload("acme/once", token: admin)
            #expect(
                try await f.put("/v1/models/acme/once/uploads/\(id)/files/a.bin", Self.weights, token: admin).status
                    == 201)
            let commit = "/v1/models/acme/once/uploads/\(id)/commit"
            // Two commits at once: exactly one makes version 1.
            async let first = f.request(.POST, commit, body: "{}", token: admin)
            async let second = f.request(.POST, commit, body: "{}", token: admin)
            let statuses = [try await first.status, try await second.status].sorted()
            #expect(statuses == [201, 409])
            var r = try await f.request(.POST, commit, body: "{}", token: admin)
            #expect(r.status == 409 && error(r) == "upload \(id) was already committed as version 1", "\(r.json)")
            r = try await f.request(.DELETE, "/v1/models/acme/once/uploads/\(id)", token: admin)
            #expect(r.status == 409, "\(r.json)")
            r = try await f.request(.GET, "/v1/models/acme/once", token: admin)
            #expect((r.json["versions"] as? [Any])?.count == 1, "\(r.json)")

            let aborted = try await f.startUpload("acme/once", token: admin)
            #expect(try await f.request(.DELETE, "/v1/models/acme/once/uploads/\(aborted)", token: admin).status == 204)
            r = try await f.request(.POST, "/v1/models/acme/once/uploads/\(aborted)/commit", body: "{}", token: admin)
            #expect(r.status == 409 && error(r) == "upload \(aborted) was already aborted", "\(r.json)")
            #expect(staged(f).isEmpty)
        }
    }

    @Test("a file that finishes arriving after its upload was committed gets 409 and is not kept")
    func putAfterCommit() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let id = try await f.startUpload("acme/late", token: admin)
            #expect(
                try await f.put("/v1/models/acme/late/uploads/\(id)/files/a.bin", Self.weights, token: admin).status
                    == 201)
            let late = f.streaming(.PUT, "/v1/models/acme/late/uploads/\(id)/files/late.bin", token: admin)
            late.body.yield(ByteBuffer(bytes: [1, 2, 3]))
            try await f.awaitRequestEntry("PUT /v1/models/{namespace}/{name}/uploads/{upload}/files/**", token: admin)
            let commit = try await f.request(
                .POST, "/v1/models/acme/late/uploads/\(id)/commit", body: "{}", token: admin)
            #expect(commit.status == 201, "\(commit.json)")
            late.body.yield(ByteBuffer(bytes: [4, 5, 6]))
            late.body.finish()
            let r = try await late.reply.value
            #expect(r.status == 409, "\(r.json)")
            let files = (commit.json["files"] as? [[String: Any]])?.compactMap { $0["path"] as? String }
            #expect(files == ["a.bin"])
            #expect(staged(f).isEmpty)
        }
    }

    @Test("an upload cut off mid-body is the client's failure (400 in the audit log), and leaves nothing")
    func cutOff() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let id = try await f.startUpload("acme/cut", token: admin)
            let put = f.streaming(.PUT, "/v1/models/acme/cut/uploads/\(id)/files/a.bin", token: admin)
            put.body.yield(ByteBuffer(repeating: 7, count: 3 << 20))
            try await f.awaitRequestEntry("PUT /v1/models/{namespace}/{name}/uploads/{upload}/files/**", token: admin)
            struct Cut: Error {}
            put.body.finish(throwing: Cut())
            _ = try? await put.reply.value
            var status: Int?
            for _ in 0..<100 where status == nil {
                let r = try await f.request(.GET, "/v1/audit/entries?limit=50", token: admin)
                let entries = r.json["entries"] as? [[String: Any]] ?? []
                status = entries.last {
                    $0["action"] as? String == "PUT /v1/models/{namespace}/{name}/uploads/{upload}/files/**"
                        && $0["phase"] as? String == "response"
                        && ($0["target"] as? [String: Any])?["name"] as? String == id
                }.flatMap { ($0["result"] as? [String: Any])?["status"] as? Int }
                if status == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(status == 400)
            #expect(staged(f).isEmpty)
            // The upload goes on: the next PUT of the same file works.
            #expect(
                try await f.put("/v1/models/acme/cut/uploads/\(id)/files/a.bin", Self.weights, token: admin).status
                    == 201)
        }
    }

    @Test("what one user holds in unfinished uploads is bounded: files, bytes and open uploads")
    func uploadQuotas() async throws {
        let limits = ServerConfiguration.Limits(
            maxUploadFilesPerUser: 2, maxUploadBytesPerUser: 250, maxOpenUploadsPerUser: 2)
        try await ServerFixture.with(limits: limits) { f in
            let admin = try await prepare(f)
            let id = try await f.startUpload("acme/big", token: admin)
            let file = { (name: String) in "/v1/models/acme/big/uploads/\(id)/files/\(name)" }
            var r = try await f.put(file("huge.bin"), Data(count: 300), token: admin)
            #expect(r.status == 413, "\(r.json)")
            #expect(error(r).hasPrefix("your unfinished uploads would hold more than 250 bytes"))
            #expect(try await f.put(file("a.bin"), Data(count: 100), token: admin).status == 201)
            #expect(try await f.put(file("b.bin"), Data(count: 100), token: admin).status == 201)
            r = try await f.put(file("c.bin"), Data(count: 1), token: admin)
            #expect(r.status == 413 && error(r).hasPrefix("your unfinished uploads hold 2 files"), "\(r.json)")
            // A file replaced by a new copy is discarded (the new copy counts while it arrives).
            #expect(try await f.put(file("a.bin"), Data(count: 40), token: admin).status == 201)
            _ = try await f.startUpload("acme/other", token: admin)
            r = try await f.request(.POST, "/v1/models/acme/third/uploads", token: admin)
            #expect(r.status == 429 && error(r) == "you have 2 unfinished uploads", "\(r.json)")
            #expect(staged(f).count == 2)
            r = try await f.request(.POST, "/v1/models/acme/big/uploads/\(id)/commit", body: "{}", token: admin)
            #expect(r.status == 201)
            #expect(try await f.request(.POST, "/v1/models/acme/third/uploads", token: admin).status == 201)
        }
    }

    @Test(
        "stored names have one canonical form: NFC twins, case twins, file-and-directory and control characters are refused"
    )
    func fileNames() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let id = try await f.startUpload("acme/names", token: admin)
            let put = { (name: String) in
                try await f.put(
                    "/v1/models/acme/names/uploads/\(id)/files/"
                        + name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed)!, Data("x".utf8),
                    token: admin)
            }
            #expect(try await put("caf\u{E9}.bin").status == 201)
            #expect(try await put("dir/a.bin").status == 201)
            let refused: [(String, String)] = [
                ("cafe\u{301}.bin", "must be in Unicode NFC (send it as 'caf\u{E9}.bin')"),
                (
                    "CAF\u{C9}.bin",
                    "differs from 'caf\u{E9}.bin' only in case; a pull to macOS or Windows would write one over the other"
                ),
                ("dir", "its directory 'dir' is also a file"),
                ("caf\u{E9}.bin/x", "its directory 'caf\u{E9}.bin' is also a file"),
                ("evil\u{1B}[2J.bin", "must not contain control or formatting characters (it holds U+001B)"),
                ("tab\there", "must not contain control or formatting characters (it holds U+0009)"),
                ("rtl\u{202E}nib.exe", "must not contain control or formatting characters (it holds U+202E)"),
                ("zero\u{200B}width", "must not contain control or formatting characters (it holds U+200B)"),
            ]
            for (name, reason) in refused {
                let r = try await put(name)
                #expect(r.status == 400, "\(name.debugDescription): \(r.json)")
                #expect(error(r).hasSuffix(reason), "\(name.debugDescription): \(error(r))")
                #expect(
                    !error(r).unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x202E || $0.value == 0x200B })
            }
            let r = try await f.request(.POST, "/v1/models/acme/names/uploads/\(id)/commit", body: "{}", token: admin)
            let files = (r.json["files"] as? [[String: Any]])?.compactMap { $0["path"] as? String }
            #expect(files == ["caf\u{E9}.bin", "dir/a.bin"])
        }
    }

    // MARK: unauthenticated requests

    @Test("oversize login fields are refused before any work, and the audit log keeps a bounded form")
    func loginFields() async throws {
        try await ServerFixture.with { f in
            let admin = try await prepare(f)
            let long = String(repeating: "x", count: 60_000)
            let before =
                try FileManager.default.attributesOfItem(
                    atPath: f.root.appendingPathComponent("vault/audit/entries.jsonl").path)[.size] as? Int ?? 0
            for _ in 0..<5 {
                let r = try await f.send(.POST, "/v1/auth/login", ["username": long, "password": "x"], token: nil)
                #expect(r.status == 400 && error(r) == "a user name is at most 64 bytes", "\(r.json)")
            }
            let r = try await f.send(
                .POST, "/v1/auth/login", ["username": "admin", "password": String(repeating: "p", count: 2000)],
                token: nil)
            #expect(r.status == 400 && error(r) == "a password is at most 1024 bytes")
            let after =
                try FileManager.default.attributesOfItem(
                    atPath: f.root.appendingPathComponent("vault/audit/entries.jsonl").path)[.size] as? Int ?? 0
            #expect(after - before < 6 * 1500, "six refused logins wrote \(after - before) bytes")
            let entries = try await f.request(.GET, "/v1/audit/entries?limit=10", token: admin)
            let users = (entries.json["entries"] as? [[String: Any]] ?? []).compactMap {
                ($0["actor"] as? [String: Any])?["user"] as? String
            }
            let bounded = try #require(users.first { $0.hasPrefix("xxx") })
            #expect(bounded.hasPrefix(String(repeating: "x", count: 256) + "… [60000 bytes, hmac-sha256:"))
            // The full name can still be searched for by its HMAC.
            let hash = try await f.send(.POST, "/v1/audit/hash", ["value": long], token: admin)
            #expect(bounded.contains(try #require(hash.json["hmac"] as? String)))
            // An account is not locked by them: the admin still logs in.
            _ = try await f.login("admin")
        }
    }

    @Test("while sealed, waiting events are capped in bytes; the drop is recorded when the log opens")
    func sealedBuffer() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mvault-sealed-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let created = try LocalVault.create(at: root, method: .shamir(shares: 3, threshold: 2))
        let keys = try KeyHolder(layout: VaultLayout(root: root))
        let audit = AuditTrail(
            directory: root.appendingPathComponent("audit"), checkpointEvery: 1000, checkpointSeconds: 60,
            metrics: VaultMetrics(), pendingByteLimit: 64 << 10)
        let long = String(repeating: "x", count: 60_000)
        for i in 0..<1_000 {
            let event = AuditEvent(
                phase: "access", requestID: "r\(i)", action: "POST /v1/auth/login", actor: .init(user: long),
                sourceIP: "127.0.0.1", result: .init(status: 503, error: long))
            try await audit.record(event, durable: true)
        }
        let (bytes, waiting, dropped) = audit.state.withLock { ($0.pendingBytes, $0.pending.count, $0.dropped) }
        #expect(bytes <= 64 << 10, "\(bytes) bytes wait")
        #expect(waiting > 10 && dropped == 1_000 - waiting)
        for share in created.shares.prefix(2) { _ = try keys.unseal(share: share.text, passphrase: nil) }
        try await audit.open(keys)
        let lines = try AuditLogLayout(directory: root.appendingPathComponent("audit")).readEntries(start: 0, limit: 2)
        let first = try AuditEvent.decode(try #require(lines.first))
        #expect(first.action == "alert.sealed-events-dropped")
        #expect(first.result?.error?.hasPrefix("\(dropped) event(s) seen while sealed were dropped") == true)
        let kept = try AuditEvent.decode(lines[1])
        #expect(kept.requestID == "r\(dropped)", "the oldest were dropped, the newest kept")
        #expect(kept.actor.user?.utf8.count ?? .max < 400)
    }

    @Test("unseal progress is reset only with one of this vault's shares")
    func unsealReset() async throws {
        try await ServerFixture.with { f in
            var r = try await f.request(.POST, "/v1/sys/unseal", body: #"{"share": "\#(f.shares[0])"}"#)
            #expect(r.json["progress"] as? Int == 1)
            let forged = try UnsealShare(text: f.shares[1])
            let fake = UnsealShare(
                vaultID: forged.vaultID, threshold: forged.threshold,
                point: .init(x: forged.point.x, y: forged.point.y.map { $0 ^ 1 }))
            let refusals: [(String, Int, String)] = [
                (#"{"reset": true}"#, 400, "a reset needs one of this vault's unseal shares as proof"),
                (
                    #"{"reset": true, "share": "mvs1-00"}"#, 403,
                    "unseal progress was not reset: that is not a valid unseal share"
                ),
                (
                    #"{"reset": true, "share": "\#(fake.text)"}"#, 403,
                    "unseal progress was not reset: that is not one of this vault's unseal shares"
                ),
            ]
            for (body, status, message) in refusals {
                r = try await f.request(.POST, "/v1/sys/unseal", body: body)
                #expect(r.status == status, "\(body): \(r.json)")
                #expect(error(r).hasPrefix(message), "\(r.json)")
                #expect(try await f.request(.GET, "/v1/sys/seal-status").json["progress"] as? Int == 1)
            }
            // A forged share is refused on its own, before it can spoil the others' progress.
            r = try await f.request(.POST, "/v1/sys/unseal", body: #"{"share": "\#(fake.text)"}"#)
            #expect(r.status == 400 && error(r).hasPrefix("that is not one of this vault's unseal shares"))
            r = try await f.request(.POST, "/v1/sys/unseal", body: #"{"reset": true, "share": "\#(f.shares[2])"}"#)
            #expect(r.status == 200 && r.json["progress"] as? Int == 0, "\(r.json)")
            try await f.unseal()
            #expect(try await f.request(.GET, "/v1/sys/health").status == 200)
        }
    }
}
