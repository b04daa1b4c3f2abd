import AsyncHTTPClient
import Foundation
import Hummingbird
import Identity
import Keyring
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing
import VaultCore
import VaultServer
import VaultServices

/// A vault with a real server on 127.0.0.1:0 over TLS, and an HTTPS client trusting its CA.
struct ServerFixture {
    static let adminPassword = "violet-quarry-ledger-42"
    var adminPassword: String { Self.adminPassword }
    let root: URL
    let shares: [String]
    let port: Int
    let client: HTTPClient
    var base: String { "https://127.0.0.1:\(port)" }
    var caPath: String { root.appendingPathComponent("vault/tls/ca.crt").path }

    /// Creates a 3-share, threshold-2 vault and runs `body` while its server runs.
    static func with(
        limits: ServerConfiguration.Limits = .init(),
        clientCertificates: ServerConfiguration.TLS.ClientCertificates = .off,
        audit: ServerConfiguration.Audit = .init(),
        backup: ServerConfiguration.BackupSchedule? = nil,
        before: (URL) async throws -> Void = { _ in },
        _ body: (ServerFixture) async throws -> Void
    ) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mvault-srv-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        // The admin's hash uses cheap parameters, so logins are fast and the upgrade to the
        // configured cost (rehash at login) can be observed.
        let admin = UserRecord(
            name: "admin",
            passwordHash: try PasswordHashing(iterations: 1, memoryBytes: 8 << 20).hash(Self.adminPassword),
            roles: ["admin"], createdAt: Date())
        let created = try LocalVault.create(
            at: root.appendingPathComponent("vault"), method: .shamir(shares: 3, threshold: 2),
            serverNames: ["localhost", "127.0.0.1"], admin: admin)
        var config = ServerConfiguration(vault: root.appendingPathComponent("vault").path)
        config.limits = limits
        config.tls.clientCertificates = clientCertificates
        config.audit = audit
        config.backup = backup
        try await before(root)
        try await serve(root: root, configuration: config, shares: created.shares.map(\.text), body)
    }

    /// Runs a server for the vault `configuration` names (under `root`) while `body` runs.
    static func serve(
        root: URL, configuration: ServerConfiguration, shares: [String], _ body: (ServerFixture) async throws -> Void
    ) async throws {
        var config = configuration
        config.listen.port = 0
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try buildApplication(configuration: config) { continuation.yield($0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let client = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(
                    tlsConfiguration: try Self.clientTLS(
                        trusting: URL(fileURLWithPath: config.vault).appendingPathComponent("tls/ca.crt").path)
                ))
            let fixture = ServerFixture(root: root, shares: shares, port: port, client: client)
            do {
                try await body(fixture)
            } catch {
                try? await client.shutdown()
                group.cancelAll()
                throw error
            }
            try await client.shutdown()
            group.cancelAll()
        }
    }

    static func clientTLS(trusting caPath: String, maximumVersion: TLSVersion? = nil) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
        if let maximumVersion {
            tls.minimumTLSVersion = .tlsv1
            tls.maximumTLSVersion = maximumVersion
        }
        return tls
    }

    /// An HTTPS client presenting `certificatePEM`/`keyPEM` and trusting the vault CA.
    func certificateClient(certificatePEM: String, keyPEM: String) throws -> HTTPClient {
        var tls = try Self.clientTLS(trusting: caPath)
        tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem))]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    /// The JSON is immutable once parsed, so a reply may cross tasks.
    struct Reply: @unchecked Sendable {
        var status: Int
        var headers: [String: String]
        var json: [String: Any]
    }

    /// A response's status, headers (by lowercased name) and JSON body.
    static func reply(_ response: HTTPClientResponse) async throws -> Reply {
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), headers: headers, json: json)
    }

    /// Gives the first two shares.
    func unseal() async throws {
        for share in shares.prefix(2) {
            _ = try await request(.POST, "/v1/sys/unseal", body: #"{"share": "\#(share)"}"#)
        }
    }

    struct RawReply {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    /// A request whose body is returned as bytes.
    func raw(
        _ method: HTTPMethod, _ path: String, token: String? = nil, headers: [String: String] = [:],
        client: HTTPClient? = nil
    ) async throws -> RawReply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await (client ?? self.client).execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        return RawReply(status: Int(response.status.code), headers: fields, body: Data(bytes.readableBytesView))
    }

    /// Logs `user` in and returns the session token.
    func login(_ user: String, password: String = Self.adminPassword) async throws -> String {
        let r = try await request(
            .POST, "/v1/auth/login", body: #"{"username": "\#(user)", "password": "\#(password)"}"#)
        return try #require(r.json["token"] as? String, "login \(user): \(r.status) \(r.json)")
    }

    /// A request with a JSON body built from `object`.
    func send(_ method: HTTPMethod, _ path: String, _ object: [String: Any], token: String?) async throws -> Reply {
        let data = try JSONSerialization.data(withJSONObject: object)
        return try await request(method, path, body: String(decoding: data, as: UTF8.self), token: token)
    }

    /// A request with a binary body (an upload).
    func put(
        _ path: String, _ data: Data, token: String?, headers: [String: String] = [:], client: HTTPClient? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = .PUT
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: data))
        let response = try await (client ?? self.client).execute(request, timeout: .seconds(60))
        return try await Self.reply(response)
    }

    /// Starts an upload of a new version of `model`; its id.
    func startUpload(_ model: String, token: String?, client: HTTPClient? = nil) async throws -> String {
        let start = try await request(.POST, "/v1/models/\(model)/uploads", client: client, token: token)
        return try #require(start.json["upload"] as? String, "\(start.status) \(start.json)")
    }

    /// Uploads `files` (each expected to be stored) and commits them; the commit's reply.
    @discardableResult
    func upload(_ model: String, _ files: [String: Data], token: String?, client: HTTPClient? = nil) async throws
        -> Reply
    {
        let id = try await startUpload(model, token: token, client: client)
        for (name, data) in files {
            let r = try await put("/v1/models/\(model)/uploads/\(id)/files/\(name)", data, token: token, client: client)
            #expect(r.status == 201, "\(r.json)")
        }
        return try await request(
            .POST, "/v1/models/\(model)/uploads/\(id)/commit", body: "{}", client: client, token: token)
    }

    /// A request whose body the test sends when it chooses (chunked): feed `body`, then finish
    /// it (or finish it throwing, which cuts the connection mid-body); `reply` is the answer.
    func streaming(_ method: HTTPMethod, _ path: String, token: String?) -> (
        body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation, reply: Task<Reply, any Error>
    ) {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        request.body = .stream(stream, length: .unknown)
        let client = self.client
        let reply = Task {
            try await Self.reply(try await client.execute(request, timeout: .seconds(60)))
        }
        return (continuation, reply)
    }

    /// Waits until the audit log holds a `request` entry for `action` (so the request's handler
    /// has started), polling as `token`'s holder.
    func awaitRequestEntry(_ action: String, token: String) async throws {
        for _ in 0..<200 {
            let r = try await request(.GET, "/v1/audit/entries?limit=50", token: token)
            let entries = r.json["entries"] as? [[String: Any]] ?? []
            if entries.contains(where: { $0["action"] as? String == action && $0["phase"] as? String == "request" }) {
                try await Task.sleep(for: .milliseconds(200))
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no request entry for \(action)")
    }

    /// A request with an optional JSON body. `timeout` catches a request that hangs, not a slow
    /// one: the suites run in parallel on two cores, and in the first minute, when every suite
    /// starts its servers and hashes its passwords, one request of a few milliseconds took over
    /// 10 s. A test that expects a refusal sets a short one.
    func request(
        _ method: HTTPMethod, _ path: String, body: String? = nil, client: HTTPClient? = nil, timeout: Int64 = 60,
        token: String? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        return try await Self.reply(try await (client ?? self.client).execute(request, timeout: .seconds(timeout)))
    }
}
