import Hummingbird
import NIOCore
import VaultCore

/// Who is calling, from a session token or an API token. Handlers that need a caller take this,
/// never an optional.
public struct AuthenticatedUser: Sendable, Equatable {
    public var name: String
    public var roles: [String]
    /// Set when the caller logged in; nil for an API token.
    public var sessionID: String?
    /// Set when the caller presented an API token: the policy narrows the owner's rights to its scopes.
    public var token: TokenRecord?
    public var mfaEnrolled: Bool
}

/// The request context of every route: the peer's address, its client certificate, and what the
/// request's audit entries will say. Handlers get the caller as a parameter.
public struct VaultRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's IP address (without port), for throttling and allowlists.
    public let remoteIP: String
    /// The connection, for its TLS peer certificate.
    let channel: any Channel
    /// The vault-issued client certificate the connection presented, once checked (mutual TLS).
    var clientCertificate: CertificateRecord?
    /// What this request's audit entries will say (nil for unaudited routes).
    var audit: AuditScope?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress ?? "unknown"
        channel = source.channel
    }
}
