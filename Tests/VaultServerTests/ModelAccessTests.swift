import Crypto
import Foundation
import Identity
import NIOHTTP1
import Storage
import Testing
import VaultCore
import VaultServer
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

    static let everyone: Set<String> = ["admin", "publisher", "consumer", "auditor", "nobody"]

    /// The expected decision for every authenticated route × role, kept here, apart from the
    /// policy code. Requests name things that do not exist, or carry an empty body, so an allowed
    /// request fails validation with the exact status in the last column instead of changing
    /// anything; a denied one gets 403.
    /// Logout comes last, as it ends the session.
    static let matrix: [(route: APIRoute, path: String, allowed: Set<String>, status: Int)] = [
        (APIRoute(.get, "/v1/models"), "/v1/models", ["admin", "publisher", "consumer", "auditor"], 200),
        (
            APIRoute(.get, "/v1/models/{namespace}/{name}"), "/v1/models/acme/demo",
            ["admin", "publisher", "consumer", "auditor"], 200
        ),
        (
            APIRoute(.get, "/v1/models/{namespace}/{name}/versions/{version}/files/**"),
            "/v1/models/acme/demo/versions/1/files/weights.bin", ["admin", "publisher", "consumer"], 200
        ),
        (
            APIRoute(.head, "/v1/models/{namespace}/{name}/versions/{version}/files/**"),
            "/v1/models/acme/demo/versions/1/files/weights.bin", ["admin", "publisher", "consumer"], 200
        ),
        (
            APIRoute(.delete, "/v1/models/{namespace}/{name}/versions/{version}"),
            "/v1/models/acme/demo/versions/99", ["admin"], 404
        ),
        (
            APIRoute(.post, "/v1/models/{namespace}/{name}/uploads"), "/v1/models/acme/demo/uploads",
            ["admin", "publisher"], 201
        ),
        (
            APIRoute(.put, "/v1/models/{namespace}/{name}/uploads/{upload}/files/**"),
            "/v1/models/acme/demo/uploads/u0/files/x.bin", ["admin", "publisher"], 404
        ),
        (
            APIRoute(.post, "/v1/models/{namespace}/{name}/uploads/{upload}/commit"),
            "/v1/models/acme/demo/uploads/u0/commit", ["admin", "publisher"], 404
        ),
        (
            APIRoute(.delete, "/v1/models/{namespace}/{name}/uploads/{upload}"), "/v1/models/acme/demo/uploads/u0",
            ["admin", "publisher"], 404
        ),
        (APIRoute(.get, "/v1/users"), "/v1/users", ["admin"], 200),
        (APIRoute(.post, "/v1/users"), "/v1/users", ["admin"], 400),
        (APIRoute(.delete, "/v1/users/{user}"), "/v1/users/ghost", ["admin"], 404),
        (APIRoute(.put, "/v1/users/{user}/password"), "/v1/users/ghost/password", ["admin"], 400),
        (APIRoute(.put, "/v1/users/{user}/roles"), "/v1/users/ghost/roles", ["admin"], 400),
        (APIRoute(.delete, "/v1/users/{user}/mfa"), "/v1/users/ghost/mfa", ["admin"], 404),
        (APIRoute(.get, "/v1/roles"), "/v1/roles", ["admin"], 200),
        (APIRoute(.post, "/v1/roles"), "/v1/roles", ["admin"], 400),
        (APIRoute(.patch, "/v1/roles/{role}"), "/v1/roles/ghost", ["admin"], 400),
        (APIRoute(.delete, "/v1/roles/{role}"), "/v1/roles/ghost", ["admin"], 404),
        (APIRoute(.get, "/v1/grants"), "/v1/grants", ["admin"], 200),
        (APIRoute(.post, "/v1/grants"), "/v1/grants", ["admin"], 400),
        (APIRoute(.delete, "/v1/grants/{grant}"), "/v1/grants/g0", ["admin"], 404),
        (APIRoute(.get, "/v1/access/review"), "/v1/access/review?stale=x", ["admin"], 400),
        (APIRoute(.get, "/v1/certificates"), "/v1/certificates", ["admin"], 200),
        (APIRoute(.post, "/v1/certificates"), "/v1/certificates", ["admin"], 400),
        (APIRoute(.delete, "/v1/certificates/{serial}"), "/v1/certificates/00", ["admin"], 404),
        (APIRoute(.get, "/v1/audit/checkpoint"), "/v1/audit/checkpoint", ["admin", "auditor"], 200),
        (APIRoute(.get, "/v1/audit/entries"), "/v1/audit/entries?limit=5", ["admin", "auditor"], 200),
        (APIRoute(.get, "/v1/audit/proof/inclusion"), "/v1/audit/proof/inclusion?index=0", ["admin", "auditor"], 200),
        (
            APIRoute(.get, "/v1/audit/proof/consistency"), "/v1/audit/proof/consistency?first=1", ["admin", "auditor"],
            200
        ),
        (APIRoute(.post, "/v1/audit/hash"), "/v1/audit/hash", ["admin", "auditor"], 400),
        (APIRoute(.get, "/metrics"), "/metrics", ["admin", "auditor"], 200),
        (APIRoute(.get, "/v1/tokens"), "/v1/tokens", everyone, 200),
        (APIRoute(.post, "/v1/tokens"), "/v1/tokens", everyone, 400),
        (APIRoute(.delete, "/v1/tokens/{token}"), "/v1/tokens/t0", everyone, 404),
        (APIRoute(.get, "/v1/auth/whoami"), "/v1/auth/whoami", everyone, 200),
        (APIRoute(.post, "/v1/auth/mfa/confirm"), "/v1/auth/mfa/confirm", everyone, 400),
        (APIRoute(.post, "/v1/auth/mfa/enroll"), "/v1/auth/mfa/enroll", everyone, 200),
        (APIRoute(.post, "/v1/auth/logout"), "/v1/auth/logout", everyone, 204),
    ]

    /// Routes anyone may call without a token.
    static let open: Set<APIRoute> = [
        APIRoute(.get, "/v1/sys/health"), APIRoute(.get, "/v1/sys/seal-status"), APIRoute(.post, "/v1/sys/unseal"),
        APIRoute(.get, "/v1/openapi.json"), APIRoute(.post, "/v1/auth/login"),
    ]

    @Test("every route × role gets the decision the table expects; no token is always 401")
    func matrixTest() async throws {
        // Some 250 requests from one address in a second or two: above the default per-address
        // rate (50/s, bursts of 200), which this test is not about.
        let limits = ServerConfiguration.Limits(requestsPerSecondPerIP: 10_000, requestBurstPerIP: 10_000)
        try await ServerFixture.with(limits: limits) { f in
            let (tokens, _) = try await prepare(f)
            let routes = try apiRoutes(configuration: ServerConfiguration(vault: f.root.path + "/vault"))
            #expect(Set(routes) == Set(Self.matrix.map(\.route)).union(Self.open), "the table must cover every route")
            for (route, path, allowed, status) in Self.matrix {
                let method = HTTPMethod(rawValue: route.method.rawValue)
                let body: String? = [.GET, .HEAD, .DELETE].contains(method) ? nil : ""
                #expect(try await f.request(method, path, body: body).status == 401, "anonymous \(path)")
                for role in Self.roles {
                    let r = try await f.request(method, path, body: body, token: tokens[role])
                    if allowed.contains(role) {
                        #expect(r.status == status, "\(role) \(route.method) \(path): \(r.status) \(r.json)")
                    } else {
                        #expect(r.status == 403, "\(role) \(route.method) \(path): \(r.status)")
                        // A HEAD answer carries no body to explain itself.
                        #expect(
                            method == .HEAD
                                || (r.json["error"] as? String)?.hasPrefix("access denied: no role or grant allows")
                                    == true
                        )
                    }
                }
            }
            // Logged out: every session token is now refused.
            #expect(try await f.request(.GET, "/v1/auth/whoami", token: tokens["admin"]).status == 401)
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
