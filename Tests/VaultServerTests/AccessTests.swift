import Crypto
import Foundation
import Identity
import NIOHTTP1
import Storage
import Testing
import VaultCore

@Suite("Server: users, roles, grants, API tokens, access review", .serialized)
struct AccessTests {
    static let password = ServerFixture.adminPassword

    /// Unseals, uploads acme/demo@1 and acme/secret-llm@1 as admin, and creates user bob (no roles).
    func prepare(_ f: ServerFixture) async throws -> (admin: String, bob: String) {
        try await f.unseal()
        let admin = try await f.login("admin")
        for model in ["acme/demo", "acme/secret-llm"] {
            try await f.upload(model, ["weights.bin": Data("weights of \(model)".utf8)], token: admin)
        }
        let r = try await f.send(.POST, "/v1/users", ["name": "bob", "password": Self.password], token: admin)
        #expect(r.status == 201, "\(r.json)")
        return (admin, try await f.login("bob"))
    }

    func pull(_ f: ServerFixture, _ model: String, token: String) async throws -> ServerFixture.RawReply {
        try await f.raw(.GET, "/v1/models/\(model)/versions/1/files/weights.bin", token: token)
    }

    func error(_ reply: ServerFixture.Reply) -> String { reply.json["error"] as? String ?? "" }

    @Test("grants on patterns allow, an explicit deny beats them, and expired grants stop counting")
    func grants() async throws {
        try await ServerFixture.with { f in
            let (admin, bob) = try await prepare(f)
            #expect(try await pull(f, "acme/demo", token: bob).status == 403)

            var r = try await f.send(
                .POST, "/v1/grants", ["user": "bob", "pattern": "acme/*", "capabilities": ["pull", "read"]],
                token: admin)
            #expect(r.status == 201)
            let allowID = try #require(r.json["id"] as? String)
            #expect(try await pull(f, "acme/demo", token: bob).body == Data("weights of acme/demo".utf8))
            #expect(try await pull(f, "acme/secret-llm", token: bob).status == 200)

            r = try await f.send(
                .POST, "/v1/grants",
                ["user": "bob", "pattern": "acme/secret-*", "capabilities": ["pull"], "effect": "deny"], token: admin)
            let denyID = try #require(r.json["id"] as? String)
            let denied = try await f.request(
                .GET, "/v1/models/acme/secret-llm/versions/1/files/weights.bin", token: bob)
            #expect(denied.status == 403)
            #expect(error(denied) == "access denied: grant \(denyID) denies pull on acme/secret-* to user bob")
            #expect(try await pull(f, "acme/demo", token: bob).status == 200)

            // Listing shows only what the caller may list.
            r = try await f.request(.GET, "/v1/models", token: bob)
            #expect(r.status == 403, "bob has read and pull, not list")
            _ = try await f.send(
                .POST, "/v1/grants", ["user": "bob", "pattern": "acme/demo", "capabilities": ["list"]], token: admin)
            r = try await f.request(.GET, "/v1/models", token: bob)
            #expect((r.json["models"] as? [[String: Any]])?.map { $0["name"] as? String } == ["acme/demo"])

            // An expiring grant works until it expires (5 s: room for a CI host busy with other
            // suites between granting and using it).
            r = try await f.send(
                .POST, "/v1/grants", ["user": "bob", "pattern": "acme/demo", "capabilities": ["push"], "expiresIn": 5],
                token: admin)
            #expect(r.status == 201)
            #expect(try await f.request(.POST, "/v1/models/acme/demo/uploads", token: bob).status == 201)
            try await Task.sleep(for: .milliseconds(5100))
            #expect(try await f.request(.POST, "/v1/models/acme/demo/uploads", token: bob).status == 403)

            // The grant that allowed bob's pulls records its last use; revoking it ends them.
            r = try await f.request(.GET, "/v1/grants", token: admin)
            let listed = try #require(r.json["grants"] as? [[String: Any]])
            #expect(listed.first { $0["id"] as? String == allowID }?["lastUsedAt"] is String)
            #expect(try await f.request(.DELETE, "/v1/grants/\(allowID)", token: admin).status == 204)
            #expect(try await pull(f, "acme/demo", token: bob).status == 403)
            #expect(try await f.request(.DELETE, "/v1/grants/\(allowID)", token: admin).status == 404)

            // Bad grants are refused and store nothing.
            let before = try await f.request(.GET, "/v1/grants", token: admin).json["grants"] as? [[String: Any]]
            for (body, status, message) in [
                (["user": "bob", "pattern": "Acme/*", "capabilities": ["pull"]], 400, "malformed JSON body"),
                (["user": "bob", "pattern": "acme/*", "capabilities": ["steal"]], 400, "malformed JSON body"),
                (["user": "bob", "pattern": "acme/*", "capabilities": [String]()], 400, "at least one capability"),
                (["pattern": "acme/*", "capabilities": ["pull"]], 400, "exactly one of"),
                (["user": "ghost", "pattern": "acme/*", "capabilities": ["pull"]], 404, "no user named ghost"),
                (["role": "ghost", "pattern": "acme/*", "capabilities": ["pull"]], 404, "no role named ghost"),
                (["user": "bob", "pattern": "*", "capabilities": ["pull"], "expiresIn": -5], 400, "expiresIn"),
            ] as [([String: Any], Int, String)] {
                let bad = try await f.send(.POST, "/v1/grants", body, token: admin)
                #expect(bad.status == status, "\(body): \(bad.json)")
                #expect(error(bad).contains(message), "\(body): \(bad.json)")
            }
            let after = try await f.request(.GET, "/v1/grants", token: admin).json["grants"] as? [[String: Any]]
            #expect(after?.count == before?.count)
        }
    }

    /// The delegation rule, cell by cell: who holds what, the grant they try to make, the answer.
    /// carol holds the `grant` capability through role `granter` and whatever each row adds.
    static let delegation: [(holds: [String], pattern: String, capabilities: [String], effect: String, status: Int)] = [
        // `grant` alone is not admin: it hands out nothing carol does not hold.
        ([], "*", ["admin"], "allow", 403),
        ([], "*", ["grant"], "allow", 403),
        ([], "*", ["audit"], "allow", 403),
        ([], "acme/*", ["pull"], "allow", 403),
        ([], "acme/*", ["pull"], "deny", 403),
        // A role's capabilities cover every model.
        (["role:pull"], "acme/*", ["pull"], "allow", 201),
        (["role:pull"], "*", ["pull"], "deny", 201),
        (["role:pull"], "acme/*", ["pull", "push"], "allow", 403),
        (["role:pull"], "*", ["admin"], "allow", 403),
        // A grant covers only its own pattern.
        (["grant:pull:acme/*"], "acme/demo", ["pull"], "allow", 201),
        (["grant:pull:acme/*"], "acme/llama-*", ["pull"], "allow", 201),
        (["grant:pull:acme/*"], "*", ["pull"], "allow", 403),
        (["grant:pull:acme/*"], "other/*", ["pull"], "allow", 403),
        // A deny on part of the pattern: carol does not hold all of it.
        (["role:pull", "deny:pull:acme/secret-*"], "acme/*", ["pull"], "allow", 403),
        (["role:pull", "deny:pull:acme/secret-*"], "acme/public-*", ["pull"], "allow", 201),
        // An administrator may grant anything.
        (["role:admin"], "*", ["admin", "grant", "audit"], "allow", 201),
    ]

    @Test(
        "the grant capability hands out only what its holder holds; admin, grant, audit and removing a deny need admin")
    func delegation() async throws {
        try await ServerFixture.with(limits: .init(requestsPerSecondPerIP: 10_000, requestBurstPerIP: 10_000)) { f in
            let (admin, _) = try await prepare(f)
            var r = try await f.send(.POST, "/v1/roles", ["name": "granter", "capabilities": ["grant"]], token: admin)
            #expect(r.status == 201, "\(r.json)")
            for (i, row) in Self.delegation.enumerated() {
                let name = "carol\(i)"
                _ = try await f.send(.POST, "/v1/users", ["name": name, "password": Self.password], token: admin)
                var roles = ["granter"]
                for held in row.holds {
                    let parts = held.split(separator: ":").map(String.init)
                    switch parts[0] {
                    case "role":
                        let role = "r\(i)-\(parts[1])"
                        _ = try await f.send(
                            .POST, "/v1/roles", ["name": role, "capabilities": [parts[1]]], token: admin)
                        roles.append(role)
                    default:
                        r = try await f.send(
                            .POST, "/v1/grants",
                            [
                                "user": name, "pattern": parts[2], "capabilities": [parts[1]],
                                "effect": parts[0] == "deny" ? "deny" : "allow",
                            ], token: admin)
                        #expect(r.status == 201, "\(r.json)")
                    }
                }
                _ = try await f.send(.PUT, "/v1/users/\(name)/roles", ["roles": roles], token: admin)
                let carol = try await f.login(name)
                let before = try await f.request(.GET, "/v1/grants", token: admin)
                r = try await f.send(
                    .POST, "/v1/grants",
                    ["user": name, "pattern": row.pattern, "capabilities": row.capabilities, "effect": row.effect],
                    token: carol)
                #expect(r.status == row.status, "row \(i) \(row): \(r.json)")
                if row.status == 403 {
                    let after = try await f.request(.GET, "/v1/grants", token: admin)
                    #expect((after.json["grants"] as? [Any])?.count == (before.json["grants"] as? [Any])?.count)
                }
            }
            // The messages say what is wrong and whom to ask.
            _ = try await f.send(
                .POST, "/v1/users", ["name": "dave", "password": Self.password, "roles": ["granter"]], token: admin)
            let dave = try await f.login("dave")
            r = try await f.send(
                .POST, "/v1/grants", ["user": "dave", "pattern": "*", "capabilities": ["admin"]], token: dave)
            #expect(error(r) == "only an administrator may make a grant of admin")
            #expect(r.json["hint"] as? String == "ask an administrator")
            r = try await f.send(
                .POST, "/v1/grants", ["user": "dave", "pattern": "acme/*", "capabilities": ["pull"]], token: dave)
            #expect(error(r) == "you may only grant what you hold: no role or grant allows pull on acme/*")

            // Removing: a deny only by an administrator; an allow by whoever could have made it.
            _ = try await f.send(.POST, "/v1/roles", ["name": "puller", "capabilities": ["pull"]], token: admin)
            _ = try await f.send(.PUT, "/v1/users/dave/roles", ["roles": ["granter", "puller"]], token: admin)
            let daveAgain = try await f.login("dave")
            r = try await f.send(
                .POST, "/v1/grants",
                ["user": "bob", "pattern": "acme/secret-*", "capabilities": ["pull"], "effect": "deny"],
                token: admin)
            let deny = try #require(r.json["id"] as? String)
            r = try await f.request(.DELETE, "/v1/grants/\(deny)", token: daveAgain)
            #expect(r.status == 403 && error(r) == "only an administrator may remove a deny grant", "\(r.json)")
            r = try await f.send(
                .POST, "/v1/grants", ["user": "bob", "pattern": "*", "capabilities": ["audit"]], token: admin)
            let audit = try #require(r.json["id"] as? String)
            #expect(try await f.request(.DELETE, "/v1/grants/\(audit)", token: daveAgain).status == 403)
            r = try await f.send(
                .POST, "/v1/grants", ["user": "bob", "pattern": "acme/*", "capabilities": ["pull"]], token: daveAgain)
            let allow = try #require(r.json["id"] as? String, "\(r.json)")
            #expect(try await f.request(.DELETE, "/v1/grants/\(allow)", token: daveAgain).status == 204)
            #expect(try await f.request(.DELETE, "/v1/grants/\(deny)", token: admin).status == 204)
            // And carol cannot make herself an administrator some other way.
            #expect(
                try await f.send(.PUT, "/v1/users/dave/roles", ["roles": ["admin"]], token: daveAgain).status == 403)
            #expect(
                try await f.send(.POST, "/v1/roles", ["name": "x", "capabilities": ["admin"]], token: daveAgain).status
                    == 403)
        }
    }

    @Test("custom roles; a role that requires MFA gives nothing until its holder enrolls")
    func rolesAndMFA() async throws {
        try await ServerFixture.with { f in
            let (admin, bob) = try await prepare(f)
            var r = try await f.send(
                .POST, "/v1/roles",
                ["name": "ml-reader", "capabilities": ["list", "read", "pull"], "requireMFA": true],
                token: admin)
            #expect(r.status == 201, "\(r.json)")
            r = try await f.send(.PUT, "/v1/users/bob/roles", ["roles": ["ml-reader"]], token: admin)
            #expect(r.json["roles"] as? [String] == ["ml-reader"])

            let refused = try await f.request(.GET, "/v1/models/acme/demo", token: bob)
            #expect(refused.status == 403)
            #expect(error(refused).contains("role ml-reader requires MFA, which bob has not enrolled"))

            // bob enrolls; logins now need a code, and the role applies.
            r = try await f.request(.POST, "/v1/auth/mfa/enroll", token: bob)
            let encoded = try #require(r.json["secret"] as? String)
            let secret = try #require(Base32.decode(encoded))
            let totp = TOTP(secret: secret)
            r = try await f.send(.POST, "/v1/auth/mfa/confirm", ["code": totp.code(at: Date())], token: bob)
            #expect(r.status == 200)
            #expect(try await f.request(.GET, "/v1/models/acme/demo", token: bob).status == 200)

            // Roles in use, built-in roles and unknown roles cannot be deleted; bad roles are refused.
            r = try await f.request(.DELETE, "/v1/roles/ml-reader", token: admin)
            #expect(r.status == 409)
            #expect(error(r) == "role ml-reader is held by bob")
            #expect(try await f.request(.DELETE, "/v1/roles/admin", token: admin).status == 409)
            #expect(try await f.request(.DELETE, "/v1/roles/ghost", token: admin).status == 404)
            r = try await f.send(.PATCH, "/v1/roles/consumer", ["capabilities": ["push"]], token: admin)
            #expect(r.status == 409)
            r = try await f.send(.POST, "/v1/roles", ["name": "ml-reader", "capabilities": ["pull"]], token: admin)
            #expect(r.status == 409)
            r = try await f.send(.POST, "/v1/roles", ["name": "Bad Role", "capabilities": ["pull"]], token: admin)
            #expect(r.status == 400)
            r = try await f.send(.PUT, "/v1/users/bob/roles", ["roles": ["ghost"]], token: admin)
            #expect(r.status == 400)
            #expect(error(r) == "no role named ghost")
            r = try await f.request(.GET, "/v1/roles", token: admin)
            #expect(
                (r.json["roles"] as? [[String: Any]])?.map { $0["name"] as? String } == [
                    "admin", "auditor", "consumer", "ml-reader", "publisher",
                ])

            // An administrator resets a lost authenticator: bob's sessions end, and the role is
            // inactive again until he re-enrolls.
            #expect(try await f.request(.DELETE, "/v1/users/bob/mfa", token: admin).status == 200)
            #expect(try await f.request(.GET, "/v1/auth/whoami", token: bob).status == 401)
            let again = try await f.login("bob")
            #expect(try await f.request(.GET, "/v1/models/acme/demo", token: again).status == 403)
        }
    }

    @Test("users: created with a checked password, listed without secrets, deleted with their access")
    func users() async throws {
        try await ServerFixture.with { f in
            let (admin, bob) = try await prepare(f)
            var r = try await f.request(.GET, "/v1/users", token: admin)
            let users = try #require(r.json["users"] as? [[String: Any]])
            #expect(users.map { $0["name"] as? String } == ["admin", "bob"])
            #expect(!String(describing: users).contains("argon2"))

            for (body, status, message) in [
                (["name": "carol", "password": "short"], 400, "at least 12"),
                (["name": "carol", "password": "1qaz2wsx3edc"], 400, "10,000 most common"),
                (["name": "Carol!", "password": Self.password], 400, "invalid user name"),
                (["name": "bob", "password": Self.password], 409, "already exists"),
                (["name": "carol", "password": Self.password, "roles": ["ghost"]], 400, "no role named ghost"),
            ] as [([String: Any], Int, String)] {
                let bad = try await f.send(.POST, "/v1/users", body, token: admin)
                #expect(bad.status == status, "\(body): \(bad.json)")
                #expect(error(bad).contains(message), "\(body): \(bad.json)")
            }
            r = try await f.request(.GET, "/v1/users", token: admin)
            #expect((r.json["users"] as? [[String: Any]])?.count == 2)

            // A new password ends bob's sessions.
            r = try await f.send(.PUT, "/v1/users/bob/password", ["password": "granite-orbit-lantern-7"], token: admin)
            #expect(r.status == 204)
            #expect(try await f.request(.GET, "/v1/auth/whoami", token: bob).status == 401)
            _ = try await f.login("bob", password: "granite-orbit-lantern-7")

            #expect(try await f.request(.DELETE, "/v1/users/admin", token: admin).status == 409)
            #expect(try await f.request(.DELETE, "/v1/users/bob", token: admin).status == 204)
            #expect(try await f.request(.DELETE, "/v1/users/bob", token: admin).status == 404)
        }
    }

    @Test("API tokens: scoped, shown once, stored as a keyed hash; revoked and expired ones are refused")
    func tokens() async throws {
        try await ServerFixture.with { f in
            let (admin, bob) = try await prepare(f)
            _ = try await f.send(.PUT, "/v1/users/bob/roles", ["roles": ["publisher"]], token: admin)
            var r = try await f.send(
                .POST, "/v1/tokens",
                ["name": "ci", "scopes": [["pattern": "acme/demo", "capabilities": ["pull", "read"]]]], token: bob)
            #expect(r.status == 201, "\(r.json)")
            let token = try #require(r.json["token"] as? String)
            let id = try #require(r.json["id"] as? String)
            #expect(token.hasPrefix("mvtok_\(id)_"))

            #expect(try await pull(f, "acme/demo", token: token).body == Data("weights of acme/demo".utf8))
            r = try await f.request(.GET, "/v1/auth/whoami", token: token)
            #expect(r.json["user"] as? String == "bob")
            // Outside its scope, even what bob himself may do is refused.
            let outside = try await f.request(.GET, "/v1/models/acme/secret-llm", token: token)
            #expect(outside.status == 403)
            #expect(error(outside) == "access denied: token \(id) is not scoped for read on acme/secret-llm")
            #expect(try await f.request(.POST, "/v1/models/acme/demo/uploads", token: token).status == 403)
            // A token cannot mint tokens or enroll MFA.
            r = try await f.send(
                .POST, "/v1/tokens", ["name": "x", "scopes": [["pattern": "*", "capabilities": ["pull"]]]], token: token
            )
            #expect(r.status == 403)

            // Listed by id and scope; the secret is nowhere, not even in the database file.
            r = try await f.request(.GET, "/v1/tokens", token: bob)
            let listed = try #require(r.json["tokens"] as? [[String: Any]])
            #expect(listed.map { $0["id"] as? String } == [id])
            #expect(listed.first?["token"] == nil)
            let secret = String(token.split(separator: "_")[2])
            for file in ["metadata.sqlite", "metadata.sqlite-wal"] {
                let url = f.root.appendingPathComponent("vault/" + file)
                let bytes = (try? Data(contentsOf: url)) ?? Data()
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file)")
            }
            let store = try SQLiteMetadataStore(path: f.root.appendingPathComponent("vault/metadata.sqlite").path)
            #expect(try store.token(id: id)?.lastUsedAt != nil)

            // A wrong secret for a real id, a revoked token, an expired token: 401.
            #expect(try await f.request(.GET, "/v1/auth/whoami", token: "mvtok_\(id)_wrong").status == 401)
            #expect(try await f.request(.DELETE, "/v1/tokens/\(id)", token: bob).status == 204)
            r = try await f.request(.GET, "/v1/auth/whoami", token: token)
            #expect(r.status == 401)
            #expect(error(r).hasPrefix("token \(id) was revoked at "))

            r = try await f.send(
                .POST, "/v1/tokens",
                ["name": "short", "expiresIn": 1, "scopes": [["pattern": "*", "capabilities": ["read"]]]], token: bob)
            let short = try #require(r.json["token"] as? String)
            try await Task.sleep(for: .milliseconds(1100))
            r = try await f.request(.GET, "/v1/auth/whoami", token: short)
            #expect(r.status == 401)
            #expect(error(r).contains("expired at"))

            // Only the owner or an admin revokes a token.
            r = try await f.send(
                .POST, "/v1/tokens", ["name": "admin-ci", "scopes": [["pattern": "*", "capabilities": ["read"]]]],
                token: admin)
            let adminTokenID = try #require(r.json["id"] as? String)
            #expect(try await f.request(.DELETE, "/v1/tokens/\(adminTokenID)", token: bob).status == 403)
            #expect(try await f.request(.DELETE, "/v1/tokens/nope", token: bob).status == 404)

            // Bad token requests store nothing.
            for (body, message) in [
                (["name": "", "scopes": [["pattern": "*", "capabilities": ["read"]]]], "a name"),
                (["name": "x", "scopes": [[String: Any]]()], "each with at least one capability"),
                (["name": "x", "expiresIn": 0, "scopes": [["pattern": "*", "capabilities": ["read"]]]], "expiresIn"),
                (
                    [
                        "name": "x", "allowedNetworks": ["10.0.0.0/99"],
                        "scopes": [["pattern": "*", "capabilities": ["read"]]],
                    ],
                    "malformed JSON"
                ),
            ] as [([String: Any], String)] {
                let bad = try await f.send(.POST, "/v1/tokens", body, token: bob)
                #expect(bad.status == 400, "\(body): \(bad.json)")
                #expect(error(bad).contains(message), "\(body): \(bad.json)")
            }
            #expect((try await f.request(.GET, "/v1/tokens", token: bob).json["tokens"] as? [Any])?.count == 2)
        }
    }

    @Test("a token's network allowlist and rate limit are enforced")
    func tokenLimits() async throws {
        try await ServerFixture.with { f in
            let (admin, _) = try await prepare(f)
            var r = try await f.send(
                .POST, "/v1/tokens",
                [
                    "name": "office", "allowedNetworks": ["10.0.0.0/8"],
                    "scopes": [["pattern": "*", "capabilities": ["read"]]],
                ], token: admin)
            let office = try #require(r.json["token"] as? String)
            r = try await f.request(.GET, "/v1/auth/whoami", token: office)
            #expect(r.status == 403)
            #expect(error(r).hasSuffix("may not be used from 127.0.0.1"))

            r = try await f.send(
                .POST, "/v1/tokens",
                ["name": "slow", "requestsPerSecond": 0.5, "scopes": [["pattern": "*", "capabilities": ["read"]]]],
                token: admin)
            let slow = try #require(r.json["token"] as? String)
            #expect(try await f.request(.GET, "/v1/auth/whoami", token: slow).status == 200)
            r = try await f.request(.GET, "/v1/auth/whoami", token: slow)
            #expect(r.status == 429)
            #expect(r.headers["retry-after"] == "2")
            // The per-token limit does not touch anyone else.
            #expect(try await f.request(.GET, "/v1/auth/whoami", token: admin).status == 200)
        }
    }

    @Test("the access review names the role or grant behind each right, its last use, and stale grants")
    func review() async throws {
        try await ServerFixture.with { f in
            let (admin, bob) = try await prepare(f)
            _ = try await f.send(.POST, "/v1/roles", ["name": "ml", "capabilities": ["list"]], token: admin)
            _ = try await f.send(.PUT, "/v1/users/bob/roles", ["roles": ["ml"]], token: admin)
            var r = try await f.send(
                .POST, "/v1/grants", ["role": "ml", "pattern": "acme/*", "capabilities": ["pull"]], token: admin)
            let used = try #require(r.json["id"] as? String)
            r = try await f.send(
                .POST, "/v1/grants", ["user": "bob", "pattern": "other/*", "capabilities": ["read"]], token: admin)
            let unused = try #require(r.json["id"] as? String)
            #expect(try await pull(f, "acme/demo", token: bob).status == 200)

            r = try await f.request(.GET, "/v1/access/review?user=bob&model=acme/demo", token: admin)
            let entries = try #require(r.json["entries"] as? [[String: Any]])
            #expect(entries.map { $0["via"] as? String } == ["role ml", "grant \(used) (role ml)"])
            #expect(entries[1]["lastUsedAt"] is String)
            #expect(entries[1]["model"] as? String == "acme/*")

            r = try await f.request(.GET, "/v1/access/review?stale=0", token: admin)
            let stale = try #require(r.json["staleGrants"] as? [[String: Any]])
            #expect(stale.map { $0["id"] as? String }.contains(unused))
            r = try await f.request(.GET, "/v1/access/review?stale=1", token: admin)
            #expect((r.json["staleGrants"] as? [Any])?.isEmpty == true)
            #expect(try await f.request(.GET, "/v1/access/review?stale=soon", token: admin).status == 400)
            #expect(try await f.request(.GET, "/v1/access/review", token: bob).status == 403)
        }
    }

    @Test("uploads stream into a new version; bad names, digests and uploads store nothing")
    func uploads() async throws {
        try await ServerFixture.with { f in
            let (admin, bob) = try await prepare(f)
            let weights = Data((0..<5_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) })
            let start = try await f.request(.POST, "/v1/models/acme/big/uploads", token: admin)
            let id = try #require(start.json["upload"] as? String)
            let base = "/v1/models/acme/big/uploads/\(id)"
            let sha = SHA256.hash(data: weights).map { String(format: "%02x", $0) }.joined()
            var r = try await f.put(
                base + "/files/model.bin", weights, token: admin, headers: ["x-content-sha256": sha])
            #expect(r.status == 201)
            #expect(r.json["sha256"] as? String == sha)
            r = try await f.put(base + "/files/sub/config.json", Data("{}".utf8), token: admin)
            #expect(r.status == 201)

            // Refused: a wrong digest, `..` and absolute names, someone else's upload, an unknown one.
            r = try await f.put(
                base + "/files/x.bin", Data("abc".utf8), token: admin, headers: ["x-content-sha256": sha])
            #expect(r.status == 400)
            #expect(error(r).contains("SHA-256"))
            for bad in ["../escape.bin", "a/../../b", "%2Fetc%2Fpasswd", "a%2F..%2F..%2Fb", "x%00y"] {
                r = try await f.put(base + "/files/" + bad, Data("x".utf8), token: admin)
                #expect(r.status == 400, "\(bad): \(r.status) \(r.json)")
            }
            _ = try await f.send(.PUT, "/v1/users/bob/roles", ["roles": ["publisher"]], token: admin)
            let bobs = try await f.login("bob")
            _ = bob
            r = try await f.put(base + "/files/y.bin", Data("x".utf8), token: bobs)
            #expect(r.status == 404)
            r = try await f.put("/v1/models/acme/big/uploads/u123/files/y.bin", Data("x".utf8), token: admin)
            #expect(r.status == 404)
            #expect(
                try await f.request(.POST, "/v1/models/acme/other/uploads/\(id)/commit", body: "{}", token: admin)
                    .status == 404)

            r = try await f.request(.POST, base + "/commit", body: #"{"note": "first"}"#, token: admin)
            #expect(r.status == 201, "\(r.json)")
            #expect(r.json["number"] as? Int == 1)
            let files = try #require(r.json["files"] as? [[String: Any]])
            #expect(files.map { $0["path"] as? String } == ["model.bin", "sub/config.json"])
            let down = try await f.raw(.GET, "/v1/models/acme/big/versions/1/files/model.bin", token: admin)
            #expect(down.body == weights)
            #expect(try await f.request(.POST, base + "/commit", body: "{}", token: admin).status == 409)

            // An empty upload cannot be committed; an abandoned one leaves no staged bytes.
            let empty = try await f.request(.POST, "/v1/models/acme/big/uploads", token: admin)
            let emptyID = try #require(empty.json["upload"] as? String)
            r = try await f.request(.POST, "/v1/models/acme/big/uploads/\(emptyID)/commit", body: "{}", token: admin)
            #expect(r.status == 400)
            #expect(error(r).contains("holds no files"))
            let another = try await f.request(.POST, "/v1/models/acme/big/uploads", token: admin)
            let anotherID = try #require(another.json["upload"] as? String)
            _ = try await f.put("/v1/models/acme/big/uploads/\(anotherID)/files/z.bin", weights, token: admin)
            #expect(
                try await f.request(.DELETE, "/v1/models/acme/big/uploads/\(anotherID)", token: admin).status == 204)
            let staging = try FileManager.default.contentsOfDirectory(
                atPath: f.root.appendingPathComponent("vault/tmp").path)
            #expect(staging.isEmpty, "\(staging)")
            r = try await f.request(.GET, "/v1/models/acme/big", token: admin)
            #expect((r.json["versions"] as? [Any])?.count == 1)

            // Versions are removed with the delete capability.
            r = try await f.request(.DELETE, "/v1/models/acme/big/versions/1", token: admin)
            #expect(r.status == 200)
            #expect(try await f.request(.DELETE, "/v1/models/acme/big/versions/1", token: admin).status == 404)
        }
    }

    @Test("a sealed vault answers uploads and admin requests with 503 and stores nothing")
    func sealed() async throws {
        try await ServerFixture.with { f in
            let token = "mvsess_0123456789abcdef_secret"
            for (method, path) in [
                (HTTPMethod.POST, "/v1/models/acme/demo/uploads"), (.POST, "/v1/users"), (.GET, "/v1/grants"),
                (.POST, "/v1/tokens"),
            ] {
                let r = try await f.request(method, path, body: method == .POST ? "{}" : nil, token: token)
                #expect(r.status == 503, "\(path)")
                #expect(error(r) == "the vault is sealed")
            }
        }
    }
}
