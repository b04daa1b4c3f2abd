import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Where the CLI talks to a server: the login profile written by `mvault login`, or, for
/// machines, `MVAULT_ADDR` with `MVAULT_TOKEN` (an API token) or with `MVAULT_CLIENT_CERT` and
/// `MVAULT_CLIENT_KEY` (a client certificate from `mvault cert issue`) in the environment.
struct RemoteProfile: Codable {
    var addr: String
    var user: String
    var token: String?
    var expiresAt: Date?
    /// Paths of a client certificate and its key, for mutual TLS.
    var clientCertificate: String?
    var clientKey: String?
    /// PEM of the CA the server's certificate must chain to (nil: the system's roots).
    var caPEM: String?

    /// `$MVAULT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/mvault`, else `~/.config/mvault`.
    static var directory: URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["MVAULT_CONFIG_DIR"] { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CONFIG_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("mvault")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config/mvault")
    }

    static var file: URL { directory.appendingPathComponent("profile.json") }

    /// The environment's token, else the saved profile, else nil.
    static func current() throws -> RemoteProfile? {
        let env = ProcessInfo.processInfo.environment
        if let addr = env["MVAULT_ADDR"], env["MVAULT_TOKEN"] != nil || env["MVAULT_CLIENT_CERT"] != nil {
            let ca = try env["MVAULT_CA"].map { try readCA($0) }
            return RemoteProfile(
                addr: addr, user: "(machine)", token: env["MVAULT_TOKEN"],
                clientCertificate: env["MVAULT_CLIENT_CERT"], clientKey: env["MVAULT_CLIENT_KEY"], caPEM: ca)
        }
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(RemoteProfile.self, from: data)
        } catch {
            throw VaultError.invalidArgument("\(file.path) is not a valid login profile; log in again")
        }
    }

    static func require() throws -> RemoteProfile {
        guard let profile = try current() else {
            throw VaultError.conflict(
                "not logged in to a server", hint: "log in with `mvault login --addr https://HOST:PORT`")
        }
        return profile
    }

    /// Writes the profile with mode 0600 in a 0700 directory.
    func save() throws {
        let dir = Self.directory
        try FileManager.default.createDirectory(
            at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: Self.file, mode: 0o600)
    }

    static func readCA(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path),
            let text = String(data: data, encoding: .utf8), text.contains("BEGIN CERTIFICATE")
        else {
            throw VaultError.invalidArgument("\(path) is not a PEM certificate")
        }
        return text
    }
}

/// An error answer from the server, shown as its `error` and `hint`.
struct RemoteError: Error {
    var status: Int
    var message: String
    /// The server's hint, which speaks of API routes.
    var hint: String?

    /// The hint as the CLI speaks: a command in place of each API route the server named; a
    /// route with no command here is left out rather than shown.
    var commandHint: String? {
        guard let hint, hint.contains("/v1/") else { return hint }
        let commands: [(route: String, command: String)] = [
            ("POST /v1/auth/login", "log in again: mvault login --addr https://HOST:PORT"),
            ("POST /v1/sys/unseal", "unseal it with its shares: mvault unseal (on the server's host)"),
            ("GET /v1/roles", "list roles: mvault role ls"),
            ("POST /v1/auth/mfa/enroll", "start one: mvault user mfa enroll"),
            ("/uploads", "push again: mvault push"),
        ]
        return commands.first { hint.contains($0.route) }?.command
    }
}

/// JSON and file transfer over HTTPS to an mvault server.
final class RemoteClient: Sendable {
    let base: String
    let token: String?
    let http: HTTPClient
    /// How this client's user gives the CA to trust: what a TLS error tells them to do.
    let caAdvice: String

    init(
        addr: String, token: String?, caPEM: String?, clientCertificate: String? = nil, clientKey: String? = nil,
        caAdvice: String = "pass --ca FILE"
    ) throws {
        self.caAdvice = caAdvice
        guard let url = URL(string: addr), url.scheme == "https", url.host != nil else {
            throw VaultError.invalidArgument(
                "invalid server address '\(addr)': expected https://HOST:PORT (the server speaks only HTTPS)")
        }
        base = addr.hasSuffix("/") ? String(addr.dropLast()) : addr
        self.token = token
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let caPEM {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        }
        if let clientCertificate {
            guard let clientKey else {
                throw VaultError.invalidArgument("MVAULT_CLIENT_CERT needs MVAULT_CLIENT_KEY, the certificate's key")
            }
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKey, format: .pem))
            } catch {
                throw VaultError.invalidArgument(
                    "cannot read the client certificate \(clientCertificate) or its key \(clientKey): \(error)")
            }
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    convenience init(_ profile: RemoteProfile) throws {
        let fromEnvironment = ProcessInfo.processInfo.environment["MVAULT_ADDR"] == profile.addr
        try self.init(
            addr: profile.addr, token: profile.token, caPEM: profile.caPEM,
            clientCertificate: profile.clientCertificate,
            clientKey: profile.clientKey,
            caAdvice: fromEnvironment ? "set MVAULT_CA=FILE" : "log in again with mvault login --ca FILE")
    }

    /// Runs `body` with a client for the current profile, shutting it down afterwards.
    static func with<T>(_ profile: RemoteProfile, _ body: (RemoteClient) async throws -> T) async throws -> T {
        let client = try RemoteClient(profile)
        do {
            let result = try await body(client)
            try? await client.http.shutdown()
            return result
        } catch {
            try? await client.http.shutdown()
            throw error
        }
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        return request
    }

    /// Sends `body` (a JSON object) and returns the response body; non-2xx answers throw.
    @discardableResult
    func call(_ method: HTTPMethod, _ path: String, json body: [String: Any]? = nil) async throws -> Data {
        var request = request(method, path)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await execute(request)
        let data = Data(buffer: try await response.body.collect(upTo: 16 << 20))
        try Self.check(response.status, data)
        return data
    }

    func call<T: Decodable>(
        _ type: T.Type, _ method: HTTPMethod, _ path: String, json body: [String: Any]? = nil
    ) async throws -> T {
        let data = try await call(method, path, json: body)
        do {
            return try Self.decoder.decode(T.self, from: data)
        } catch {
            throw VaultError.invalidArgument("the server's answer to \(method) \(path) was not understood")
        }
    }

    func execute(_ request: HTTPClientRequest, timeout: TimeAmount = .hours(24)) async throws -> HTTPClientResponse {
        do {
            return try await http.execute(request, timeout: timeout)
        } catch let error as NIOSSLError {
            throw VaultError.invalidArgument(
                "TLS with \(base) failed: \(error); if the server uses the vault's own CA, \(caAdvice) with its certificate, VAULT/tls/ca.crt on the server's host"
            )
        } catch let error as HTTPClientError {
            throw VaultError.io(path: base, detail: "cannot reach the server (\(error))")
        } catch let error as IOError {
            throw VaultError.io(path: base, detail: "cannot connect (\(error))")
        }
    }

    static func check(_ status: HTTPResponseStatus, _ data: Data) throws {
        guard !(200..<300).contains(Int(status.code)) else { return }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        throw RemoteError(
            status: Int(status.code), message: object?["error"] as? String ?? "HTTP \(status.code)",
            hint: object?["hint"] as? String)
    }

    static func escape(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map {
            String($0).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/", "?", "#"]))
                ?? String($0)
        }.joined(separator: "/")
    }
}
