import Hummingbird
import NIOCore

/// Who is calling, as established by `SessionAuthenticator`. Handlers that need a caller take
/// this, never an optional.
public struct AuthenticatedUser: Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public var sessionID: String
}

/// The request context of every route: the peer's address and, once authenticated, the caller.
public struct VaultRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's IP address (without port), for throttling and allowlists.
    public let remoteIP: String
    public var identity: AuthenticatedUser?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}
