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
    /// The path's parameters, by the route it matched (`RouteTable`).
    var path = PathParameters()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = Self.text(of: source.channel.remoteAddress)
        channel = source.channel
    }

    /// An address as text, without its port: IPv4 formatted here (NIO's `ipAddress` goes
    /// through `inet_ntop`, which formats with `sprintf`, on every request), IPv6 by NIO.
    static func text(of address: SocketAddress?) -> String {
        guard case .v4(let v4) = address else { return address?.ipAddress ?? "unknown" }
        let n = UInt32(bigEndian: v4.address.sin_addr.s_addr)
        return String(unsafeUninitializedCapacity: 15) { out in
            var at = 0
            for shift in stride(from: 24, through: 0, by: -8) {
                let byte = Int((n >> UInt32(shift)) & 0xFF)
                if shift != 24 {
                    out[at] = UInt8(ascii: ".")
                    at += 1
                }
                if byte >= 100 {
                    out[at] = UInt8(ascii: "0") + UInt8(byte / 100)
                    at += 1
                }
                if byte >= 10 {
                    out[at] = UInt8(ascii: "0") + UInt8(byte / 10 % 10)
                    at += 1
                }
                out[at] = UInt8(ascii: "0") + UInt8(byte % 10)
                at += 1
            }
            return at
        }
    }
}
