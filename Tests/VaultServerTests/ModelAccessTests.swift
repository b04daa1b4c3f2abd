import Crypto
import Foundation
import Identity
import Storage
import Testing
import VaultCore
import VaultServices

@Suite("Server: models API and the authorization matrix", .serialized)
struct ModelAccessTests {
    /// One user per built-in role, plus one with no role, all with the same password.
    static let roles = ["admin", "publisher", "consumer", "auditor", "nobody"]

    /// Pushes acme/demo@1 (weights.bin, 3 MB, and sub/config.json) and logs every role in.
    func prepare(_ f: ServerFixture) async throws -> (tokens: [String: String], weights: Data) {
        try await f.unseal()
        let vaultURL = f.root.appendingPathComponent("vault")
        let store = try SQLiteMetadataStore(path: vaultURL.appendingPathComponent("metadata.sqlite").path)
        let hash = try PasswordHashing(iterations: 1, memoryBytes: 8 << 20).hash(f.adminPassword)
        for role in Self.roles where role != "admin" {
            try store.createUser(
                UserRecord(
                    name: "u-\(role)", passwordHash: hash, roles: role == "nobody" ? [] : [role], createdAt: Date()))
        }
        let keyring = try KeyringFixture.open(f)
        let vault = try LocalVault(layout: VaultLayout(root: vaultURL), keys: InProcessKeys(keyring: keyring))
        let input = f.root.appendingPathComponent("in")
        try FileManager.default.createDirectory(
            at: input.appendingPathComponent("sub"), withIntermediateDirectories: true)
        let weights = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        try weights.write(to: input.appendingPathComponent("weights.bin"))
        try Data(#"{"a": 1}"#.utf8).write(to: input.appendingPathComponent("sub/config.json"))
        _ = try vault.push([input], to: try ModelName(parsing: "acme/demo"), note: nil)

        var tokens: [String: String] = [:]
        for role in Self.roles {
            let user = role == "admin" ? "admin" : "u-\(role)"
            let r = try await f.request(
                .POST, "/v1/auth/login", body: #"{"username": "\#(user)", "password": "\#(f.adminPassword)"}"#)
            tokens[role] = try #require(r.json["token"] as? String, "\(role): \(r.json)")
        }
        return (tokens, weights)
    }

    /// The expected decision for every route × role, kept here, apart from the policy code.
    static let matrix: [(path: String, allowed: Set<String>)] = [
        ("/v1/models", ["admin", "publisher", "consumer", "auditor"]),
        ("/v1/models/acme/demo", ["admin", "publisher", "consumer", "auditor"]),
        ("/v1/models/acme/demo/versions/1/files/weights.bin", ["admin", "publisher", "consumer"]),
        ("/v1/auth/whoami", ["admin", "publisher", "consumer", "auditor", "nobody"]),
    ]

    @Test("every route × role gets the decision the table expects; no token is always 401")
    func matrixTest() async throws {
        try await ServerFixture.with { f in
            let (tokens, _) = try await prepare(f)
            for (path, allowed) in Self.matrix {
                #expect(try await f.request(.GET, path).status == 401, "anonymous \(path)")
                for role in Self.roles {
                    let r = try await f.request(.GET, path, token: tokens[role])
                    if allowed.contains(role) {
                        #expect(r.status == 200, "\(role) \(path): \(r.status)")
                    } else {
                        #expect(r.status == 403, "\(role) \(path): \(r.status)")
                        #expect(
                            (r.json["error"] as? String)?.hasPrefix("access denied: no role or grant allows") == true)
                    }
                }
            }
        }
    }

    @Test("downloads stream the exact bytes, with ETag, If-None-Match and Range")
    func download() async throws {
        try await ServerFixture.with { f in
            let (tokens, weights) = try await prepare(f)
            let token = tokens["consumer"]
            let url = "/v1/models/acme/demo/versions/1/files/weights.bin"
            let sha = SHA256.hash(data: weights).map { String(format: "%02x", $0) }.joined()

            var r = try await f.raw(.GET, url, token: token)
            #expect(r.status == 200)
            #expect(r.body == weights)
            #expect(r.headers["etag"] == "\"\(sha)\"")
            #expect(r.headers["accept-ranges"] == "bytes")

            r = try await f.raw(.GET, url, token: token, headers: ["if-none-match": "\"\(sha)\""])
            #expect(r.status == 304)

            r = try await f.raw(.GET, url, token: token, headers: ["range": "bytes=1000000-1999999"])
            #expect(r.status == 206)
            #expect(r.headers["content-range"] == "bytes 1000000-1999999/3000000")
            #expect(r.body == weights[1_000_000..<2_000_000])

            r = try await f.raw(.GET, url, token: token, headers: ["range": "bytes=-10"])
            #expect(r.body == weights.suffix(10))
            r = try await f.raw(.GET, url, token: token, headers: ["range": "bytes=2999990-"])
            #expect(r.body == weights.suffix(10))

            r = try await f.raw(.GET, url, token: token, headers: ["range": "bytes=3000000-"])
            #expect(r.status == 416)
            #expect(r.headers["content-range"] == "bytes */3000000")

            r = try await f.raw(.GET, "/v1/models/acme/demo/versions/1/files/sub/config.json", token: token)
            #expect(r.body == Data(#"{"a": 1}"#.utf8))

            for (path, status) in [
                ("/v1/models/acme/demo/versions/1/files/nope.bin", 404),
                ("/v1/models/acme/demo/versions/9/files/weights.bin", 404),
                ("/v1/models/acme/other/versions/1/files/weights.bin", 404),
                ("/v1/models/acme/demo/versions/x/files/weights.bin", 400),
                ("/v1/models/Bad/demo/versions/1/files/weights.bin", 400),
            ] {
                let e = try await f.request(.GET, path, token: token)
                #expect(e.status == status, "\(path): \(e.json)")
                #expect(e.json["error"] is String)
            }
        }
    }
}
