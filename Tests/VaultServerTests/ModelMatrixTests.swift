import AsyncHTTPClient
import Foundation
import Identity
import NIOHTTP1
import Storage
import Testing
import VaultCore
import VaultServer

/// Every model route, called by every kind of caller on a model it may use and on models it may
/// not. The expected decisions are written out here, apart from the policy code: a route that
/// asked about "any model" instead of the named one, or a caller whose deny, scope, MFA or
/// network rule were ignored, fails a cell.
@Suite("Server: model routes × callers, cell by cell", .serialized)
struct ModelMatrixTests {
    /// The model routes, each with the status it answers when allowed.
    enum Route: String, CaseIterable {
        case show, download, head, delete, start, put, commit, abort

        var api: APIRoute {
            switch self {
            case .show: APIRoute(.get, "/v1/models/{namespace}/{name}")
            case .download: APIRoute(.get, "/v1/models/{namespace}/{name}/versions/{version}/files/**")
            case .head: APIRoute(.head, "/v1/models/{namespace}/{name}/versions/{version}/files/**")
            case .delete: APIRoute(.delete, "/v1/models/{namespace}/{name}/versions/{version}")
            case .start: APIRoute(.post, "/v1/models/{namespace}/{name}/uploads")
            case .put: APIRoute(.put, "/v1/models/{namespace}/{name}/uploads/{upload}/files/**")
            case .commit: APIRoute(.post, "/v1/models/{namespace}/{name}/uploads/{upload}/commit")
            case .abort: APIRoute(.delete, "/v1/models/{namespace}/{name}/uploads/{upload}")
            }
        }

        var success: Int {
            switch self {
            case .show, .download, .head, .delete: 200
            case .start, .put, .commit: 201
            case .abort: 204
            }
        }
    }

    static let models = ["acme/open", "acme/secret-x", "other/model"]
    static let reading: Set<Route> = [.show, .download, .head]
    static let writing: Set<Route> = [.start, .put, .commit, .abort]
    static let every = Set(Route.allCases)

    /// caller → model → the routes it may use there (every other cell is 403); and the models
    /// `GET /v1/models` shows it (nil: that route is 403 too).
    static let expected: [String: (routes: [String: Set<Route>], listed: Set<String>?)] = [
        "admin": (["acme/open": every, "acme/secret-x": every, "other/model": every], Set(models)),
        "publisher": (
            [
                "acme/open": reading.union(writing), "acme/secret-x": reading.union(writing),
                "other/model": reading.union(writing),
            ], Set(models)
        ),
        "consumer": (["acme/open": reading, "acme/secret-x": reading, "other/model": reading], Set(models)),
        "auditor": (["acme/open": [.show], "acme/secret-x": [.show], "other/model": [.show]], Set(models)),
        "nobody": ([:], nil),
        // Role acme-team: list on every model, and a grant of read, pull, push and delete on acme/*.
        "acme-team": (["acme/open": every, "acme/secret-x": every], Set(models)),
        // A publisher with an explicit deny of list, read, pull and push on acme/secret-*.
        "denied": (
            ["acme/open": reading.union(writing), "other/model": reading.union(writing)], ["acme/open", "other/model"]
        ),
        // A publisher's token scoped to acme/open and pull.
        "token": (["acme/open": [.download, .head]], nil),
        // A client certificate of a user in acme-team.
        "certificate": (["acme/open": every, "acme/secret-x": every], Set(models)),
        // A role with every model capability that requires MFA, held by a user without it.
        "no-mfa": ([:], nil),
        // A role with every model capability for 10.0.0.0/8 only; the test calls from 127.0.0.1.
        "wrong-network": ([:], nil),
    ]

    struct Caller {
        var token: String?
        var client: HTTPClient?
    }

    let payload = Data((0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) })

    /// `path` of `model`'s routes.
    func path(_ model: String, _ rest: String = "") -> String { "/v1/models/\(model)\(rest)" }

    /// Pushes one version of `model` as `caller` over the API and returns its number.
    func push(_ f: ServerFixture, _ model: String, as caller: Caller) async throws -> Int {
        let commit = try await f.upload(model, ["weights.bin": payload], token: caller.token, client: caller.client)
        #expect(commit.status == 201, "\(commit.json)")
        return try #require(commit.json["number"] as? Int, "\(commit.json)")
    }

    /// The version numbers of `model`, as the administrator sees them.
    func versions(_ f: ServerFixture, _ model: String, admin: Caller) async throws -> [Int] {
        let r = try await f.request(.GET, path(model), token: admin.token)
        return (r.json["versions"] as? [[String: Any]] ?? []).compactMap { $0["number"] as? Int }
    }

    /// Calls `route` on `model` as `caller`, preparing what the call needs (a version to delete,
    /// an upload to fill, commit or abort: the caller's own when it may, else the admin's), and
    /// returns the status; afterwards checks what the call should have changed.
    func call(_ f: ServerFixture, _ route: Route, _ model: String, as caller: Caller, allowed: Bool, admin: Caller)
        async throws -> (status: Int, json: [String: Any])
    {
        let owner = allowed ? caller : admin
        switch route {
        case .show:
            let r = try await f.request(.GET, path(model), client: caller.client, token: caller.token)
            if allowed { #expect(r.json["name"] as? String == model, "\(r.json)") }
            return (r.status, r.json)
        case .download, .head:
            let r = try await f.raw(
                route == .head ? .HEAD : .GET, path(model, "/versions/1/files/weights.bin"), token: caller.token,
                client: caller.client)
            if allowed { #expect(route == .head ? r.body.isEmpty : r.body == payload) }
            let json = (try? JSONSerialization.jsonObject(with: r.body)) as? [String: Any] ?? [:]
            return (r.status, json)
        case .delete:
            let number = allowed ? try await push(f, model, as: admin) : 1
            let r = try await f.request(
                .DELETE, path(model, "/versions/\(number)"), client: caller.client, token: caller.token)
            let left = try await versions(f, model, admin: admin)
            #expect(left.contains(number) == !allowed, "\(model)@\(number) after DELETE: \(left)")
            return (r.status, r.json)
        case .start:
            let r = try await f.request(
                .POST, path(model, "/uploads"), body: "", client: caller.client, token: caller.token)
            if let upload = r.json["upload"] as? String {
                let end = try await f.request(
                    .DELETE, path(model, "/uploads/\(upload)"), client: caller.client, token: caller.token)
                #expect(end.status == 204)
            }
            return (r.status, r.json)
        case .put, .commit, .abort:
            let upload = try await f.startUpload(model, token: owner.token, client: owner.client)
            if route != .put {
                let put = try await f.put(
                    path(model, "/uploads/\(upload)/files/weights.bin"), payload, token: owner.token,
                    client: owner.client)
                #expect(put.status == 201)
            }
            let r: ServerFixture.Reply
            switch route {
            case .put:
                r = try await f.put(
                    path(model, "/uploads/\(upload)/files/weights.bin"), payload, token: caller.token,
                    client: caller.client)
            case .commit:
                r = try await f.request(
                    .POST, path(model, "/uploads/\(upload)/commit"), body: "{}", client: caller.client,
                    token: caller.token)
            default:
                r = try await f.request(
                    .DELETE, path(model, "/uploads/\(upload)"), client: caller.client, token: caller.token)
            }
            // A refused call leaves the admin's upload open and as it was: it still aborts.
            if !allowed || route == .put {
                let end = try await f.request(
                    .DELETE, path(model, "/uploads/\(upload)"), client: owner.client, token: owner.token)
                #expect(end.status == 204, "\(route) \(model): the upload should still be open: \(end.json)")
            }
            return (r.status, r.json)
        }
    }

    @Test("each caller gets exactly the expected status on each model route and model; refusals change nothing")
    func cells() async throws {
        let limits = ServerConfiguration.Limits(requestsPerSecondPerIP: 100_000, requestBurstPerIP: 100_000)
        try await ServerFixture.with(limits: limits, clientCertificates: .optional) { f in
            try await f.unseal()
            let admin = Caller(token: try await f.login("admin"))
            let routes = try apiRoutes(configuration: ServerConfiguration(vault: f.root.path + "/vault"))
            let modelRoutes = Set(routes.filter { $0.path.hasPrefix("/v1/models/") })
            #expect(
                modelRoutes == Set(Route.allCases.map(\.api)),
                "every model route needs a row here: \(modelRoutes.subtracting(Route.allCases.map(\.api)))")
            #expect(routes.contains(APIRoute(.get, "/v1/models")))

            // Users are written to the store directly, with a cheap hash: 200 Argon2id hashes at
            // the configured cost would make this test slow, not better.
            let store = try SQLiteMetadataStore(path: f.root.appendingPathComponent("vault/metadata.sqlite").path)
            let hash = try PasswordHashing(iterations: 1, memoryBytes: 8 << 20).hash(f.adminPassword)
            let everything = ["list", "read", "pull", "push", "delete"]
            for (name, body) in [
                ("acme-team", ["name": "acme-team", "capabilities": ["list"]] as [String: Any]),
                ("mfa-team", ["name": "mfa-team", "capabilities": everything, "requireMFA": true]),
                ("net-team", ["name": "net-team", "capabilities": everything, "allowedNetworks": ["10.0.0.0/8"]]),
            ] {
                #expect(try await f.send(.POST, "/v1/roles", body, token: admin.token).status == 201, "\(name)")
            }
            for (user, roles) in [
                ("u-publisher", ["publisher"]), ("u-consumer", ["consumer"]), ("u-auditor", ["auditor"]),
                ("u-nobody", []), ("u-team", ["acme-team"]), ("u-denied", ["publisher"]), ("u-robot", ["acme-team"]),
                ("u-mfa", ["mfa-team"]), ("u-net", ["net-team"]),
            ] {
                try store.createUser(UserRecord(name: user, passwordHash: hash, roles: roles, createdAt: Date()))
            }
            for grant in [
                ["role": "acme-team", "pattern": "acme/*", "capabilities": ["read", "pull", "push", "delete"]],
                [
                    "user": "u-denied", "pattern": "acme/secret-*", "capabilities": ["list", "read", "pull", "push"],
                    "effect": "deny",
                ],
            ] as [[String: Any]] {
                let r = try await f.send(.POST, "/v1/grants", grant, token: admin.token)
                #expect(r.status == 201, "\(r.json)")
            }
            for model in Self.models { _ = try await push(f, model, as: admin) }

            var callers: [String: Caller] = ["admin": admin]
            for (name, user) in [
                ("publisher", "u-publisher"), ("consumer", "u-consumer"), ("auditor", "u-auditor"),
                ("nobody", "u-nobody"), ("acme-team", "u-team"), ("denied", "u-denied"), ("no-mfa", "u-mfa"),
                ("wrong-network", "u-net"),
            ] {
                callers[name] = Caller(token: try await f.login(user))
            }
            let minted = try await f.send(
                .POST, "/v1/tokens", ["name": "ci", "scopes": [["pattern": "acme/open", "capabilities": ["pull"]]]],
                token: callers["publisher"]!.token)
            callers["token"] = Caller(token: try #require(minted.json["token"] as? String, "\(minted.json)"))
            let issued = try await f.send(
                .POST, "/v1/certificates", ["user": "u-robot", "days": 30], token: admin.token)
            let robot = try f.certificateClient(
                certificatePEM: try #require(issued.json["certificate"] as? String, "\(issued.json)"),
                keyPEM: try #require(issued.json["privateKey"] as? String))
            defer { _ = robot.shutdown() }
            callers["certificate"] = Caller(client: robot)
            #expect(Set(callers.keys) == Set(Self.expected.keys))

            // Anonymous: 401 on every model route, whatever the model.
            for route in Route.allCases {
                let (status, _) = try await call(
                    f, route, "acme/open", as: Caller(), allowed: false, admin: admin)
                #expect(status == 401, "anonymous \(route)")
            }
            #expect(try await f.request(.GET, "/v1/models").status == 401)

            for (name, expectation) in Self.expected.sorted(by: { $0.key < $1.key }) {
                let caller = callers[name]!
                let list = try await f.request(.GET, "/v1/models", client: caller.client, token: caller.token)
                if let listed = expectation.listed {
                    #expect(list.status == 200, "\(name) GET /v1/models: \(list.json)")
                    let names = (list.json["models"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                    #expect(Set(names) == listed, "\(name) sees \(names)")
                } else {
                    #expect(list.status == 403, "\(name) GET /v1/models: \(list.status)")
                }
                for model in Self.models {
                    for route in Route.allCases {
                        let allowed = expectation.routes[model, default: []].contains(route)
                        let before = try await versions(f, model, admin: admin)
                        let (status, json) = try await call(f, route, model, as: caller, allowed: allowed, admin: admin)
                        let cell = "\(name) \(route) \(model)"
                        if allowed {
                            #expect(status == route.success, "\(cell): \(status) \(json)")
                        } else {
                            #expect(status == 403, "\(cell): \(status) \(json)")
                            #expect(
                                route == .head
                                    || (json["error"] as? String)?.hasPrefix("access denied") == true,
                                "\(cell): \(json)")
                            #expect(try await versions(f, model, admin: admin) == before, "\(cell) changed the model")
                        }
                    }
                }
            }
        }
    }
}
