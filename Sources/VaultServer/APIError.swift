import Foundation
import Hummingbird
import Identity
import Keyring
import VaultCore
import VaultWire

/// The one way errors reach HTTP: a status and a JSON body `{"error": …, "hint": …}`.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var hint: String?
    /// Seconds for a Retry-After header (429 and 503).
    public var retryAfter: Int?
    /// A Content-Range header (416).
    public var contentRange: String?

    public init(
        _ status: HTTPResponse.Status, _ message: String, hint: String? = nil, retryAfter: Int? = nil,
        contentRange: String? = nil
    ) {
        self.status = status
        self.message = message
        self.hint = hint
        self.retryAfter = retryAfter
        self.contentRange = contentRange
    }

    struct Body: Encodable {
        var error: String
        var hint: String?
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(Body(error: message, hint: hint))
        var response = Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        if let retryAfter { response.headers[.init("Retry-After")!] = String(retryAfter) }
        if let contentRange { response.headers[.contentRange] = contentRange }
        return response
    }

    /// Maps the errors services throw to HTTP statuses.
    public static func from(_ error: any Error) -> APIError {
        switch error {
        case let error as APIError: return error
        case let error as RequestError: return APIError(.badRequest, error.message, hint: error.hint)
        case VaultError.sealed:
            return APIError(.serviceUnavailable, VaultError.sealed.description, hint: "unseal it: POST /v1/sys/unseal")
        case VaultError.conflict(let detail, let hint):
            return APIError(.conflict, detail, hint: hint)
        case let error as VaultError where { if case .unmarkable = error { true } else { false } }():
            return APIError(.unprocessableContent, error.description, hint: error.hint)
        case VaultError.userExists, VaultError.roleExists:
            return APIError(.conflict, "\(error)")
        case let error as VaultError where error.isNotFound:
            return APIError(.notFound, error.description, hint: error.hint)
        case let error as VaultError: return APIError(.badRequest, error.description, hint: error.hint)
        case let error as KeyringError: return APIError(.badRequest, error.description)
        case let error as IdentityError: return APIError(.badRequest, error.description)
        default: return APIError(.internalServerError, "internal error")
        }
    }
}

/// The server's responder: what every request passes through on its way to its route.
/// - Limits requests per source address before any routing or authentication work.
/// - With mutual TLS, checks the client certificate (`VaultAPI.clientCertificate(of:)`).
/// - Finds the route (`RouteTable`), and answers an unknown endpoint with a JSON 404.
/// - Renders what a route throws as a JSON error (routes throw `APIError`s).
/// - Adds HSTS to everything, and `Cache-Control: no-store` to every API response, since any may
///   carry a secret.
///
/// One responder rather than middleware: with Swift concurrency on NIO's event loops, each
/// layer of middleware costs a request several trips through the loop's job queue.
struct FrontDoor: HTTPResponder {
    let routes: RouteTable<VaultAPI.Endpoint>
    let limiter: RateLimiter
    /// Set when client certificates are checked (mutual TLS).
    let certificates: VaultAPI?

    func respond(to request: Request, context: VaultRequestContext) async throws -> Response {
        var response: Response
        do {
            if let wait = limiter.take("ip:\(context.remoteIP)") {
                throw APIError(.tooManyRequests, "too many requests from \(context.remoteIP)", retryAfter: wait)
            }
            var context = context
            if let api = certificates { context.clientCertificate = try await api.clientCertificate(of: context) }
            guard let (route, parameters) = routes.match(request.method, request.uri.path) else {
                throw HTTPError(.notFound)
            }
            context.path = parameters
            response = try await route.responder.respond(to: request, context: context)
        } catch {
            response = try Self.apiError(error, request).response(from: request, context: context)
        }
        // Appended: no handler sets these, so there is nothing to replace.
        response.headers.append(contentsOf: Self.securityHeaders)
        return response
    }

    static let securityHeaders: HTTPFields = [
        .strictTransportSecurity: "max-age=31536000", .cacheControl: "no-store", .xContentTypeOptions: "nosniff",
    ]

    static func apiError(_ error: any Error, _ request: Request) -> APIError {
        switch error {
        case let error as HTTPError where error.status == .notFound:
            APIError(.notFound, "no such endpoint: \(request.method) \(request.uri.path)", hint: "see /v1/openapi.json")
        case let error as HTTPResponseError where !(error is APIError):
            APIError(error.status, "\(error.status.reasonPhrase)")
        default:
            APIError.from(error)
        }
    }
}
