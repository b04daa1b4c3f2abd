import Foundation
import Hummingbird
import Keyring
import VaultServices

/// One endpoint of the `/v1` API: method, path, and what the OpenAPI document calls it.
public struct APIRoute: Hashable, Sendable {
    public var method: HTTPRequest.Method
    public var path: String
    public init(_ method: HTTPRequest.Method, _ path: String) {
        self.method = method
        self.path = path
    }
}

/// The API: every route is registered from `endpoints`, which is also what the OpenAPI test
/// compares against the committed document — the router has no other routes.
struct VaultAPI: Sendable {
    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    let layout: VaultLayout
    let keys: KeyHolder
    let limits: ServerConfiguration.Limits
    static let version = "0.1.0"

    var endpoints: [(APIRoute, Handler)] {
        [
            (APIRoute(.get, "/v1/sys/health"), health),
            (APIRoute(.get, "/v1/sys/seal-status"), sealStatus),
            (APIRoute(.post, "/v1/sys/unseal"), unseal),
            (APIRoute(.get, "/v1/openapi.json"), openAPI),
        ]
    }

    func register(on router: Router<BasicRequestContext>) {
        for (route, handler) in endpoints {
            router.on(RouterPath(route.path), method: route.method) { request, context in
                try await handler(request, context)
            }
        }
    }

    // MARK: sys

    struct Health: Encodable {
        var status: String
        var sealed: Bool
        var version: String
    }

    /// 200 when unsealed, 503 when sealed (so load balancers only route to usable servers).
    var health: Handler {
        { _, _ in
            let sealed = keys.status().sealed
            return try json(
                Health(status: sealed ? "sealed" : "ok", sealed: sealed, version: Self.version),
                status: sealed ? .serviceUnavailable : .ok)
        }
    }

    struct SealStatus: Encodable {
        var sealed: Bool
        var type: String
        /// Shares needed (Shamir), 0 for a passphrase vault.
        var threshold: Int
        /// Shares given so far toward the threshold.
        var progress: Int
        var version: String
    }

    func sealStatusBody() -> SealStatus {
        let s = keys.status()
        return SealStatus(
            sealed: s.sealed, type: s.sealType, threshold: s.threshold, progress: s.sharesGiven, version: Self.version)
    }

    var sealStatus: Handler {
        { _, _ in try json(sealStatusBody()) }
    }

    struct UnsealRequest: Decodable {
        var share: String?
        var passphrase: String?
        var reset: Bool?
    }

    /// Takes one share (or the passphrase); like Vault's, this endpoint needs no token: the
    /// shares are the credential.
    var unseal: Handler {
        { request, _ in
            let body = try await decode(UnsealRequest.self, from: request)
            if body.reset == true {
                _ = keys.resetUnseal()
                return try json(sealStatusBody())
            }
            guard (body.share == nil) != (body.passphrase == nil) else {
                throw APIError(
                    .badRequest, "give exactly one of \"share\" or \"passphrase\"",
                    hint: "e.g. {\"share\": \"mvs1-…\"}")
            }
            do {
                _ = try keys.unseal(share: body.share, passphrase: body.passphrase)
            } catch let error as KeyringError {
                throw APIError(.badRequest, error.description)
            }
            return try json(sealStatusBody())
        }
    }

    var openAPI: Handler {
        { _, _ in
            guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
                let data = try? Data(contentsOf: url)
            else { throw APIError(.internalServerError, "the OpenAPI document is missing from this build") }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    // MARK: helpers

    func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limits.maxJSONBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, "request body over \(limits.maxJSONBodyBytes) bytes")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError(.badRequest, "malformed JSON body", hint: "see /v1/openapi.json for the request schema")
        }
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}
