import Foundation
import Hummingbird
import Identity
import VaultCore
import VaultWire

/// API tokens for machines: scoped, expiring, revocable; the secret is shown once.
extension VaultAPI {
    struct TokenView: Encodable {
        var id: String
        var name: String
        var owner: String
        var scopes: [TokenScope]
        var expiresAt: Date
        var createdAt: Date
        var revokedAt: Date?
        var lastUsedAt: Date?
        var allowedNetworks: [IPNetwork]
        var requestsPerSecond: Double?
        /// Only in the response that creates the token.
        var token: String?

        init(_ record: TokenRecord, secret: String? = nil) {
            id = record.id
            name = record.name
            owner = record.owner
            scopes = record.scopes
            expiresAt = record.expiresAt
            createdAt = record.createdAt
            revokedAt = record.revokedAt
            lastUsedAt = record.lastUsedAt
            allowedNetworks = record.allowedNetworks
            requestsPerSecond = record.requestsPerSecond
            token = secret
        }
    }

    struct TokenList: Encodable {
        var tokens: [TokenView]
    }

    /// Your tokens (ids, scopes, use), never their secrets.
    var listTokens: AuthenticatedHandler {
        { [self] _, _, caller in
            try await blocking { [self] in
                try json(TokenList(tokens: try identities.tokens(owner: caller.name).map { TokenView($0) }))
            }
        }
    }

    var createToken: AuthenticatedHandler {
        { [self] request, _, caller in
            let body = try await decode(NewToken.self, from: request)
            let ttl = try body.validate(maxLifetime: limits.maxTokenTTLSeconds)
            let now = Date()
            let token = BearerToken(
                prefix: BearerToken.apiPrefix, id: Hex.encode(SecretGenerator.bytes(8)), secret: SecretGenerator.token()
            )
            let record = TokenRecord(
                id: token.id, name: body.name, owner: caller.name,
                secretHash: try hasher("api-token").hash(token.secret),
                scopes: body.scopes, expiresAt: now.addingTimeInterval(TimeInterval(ttl)), createdAt: now,
                allowedNetworks: body.allowedNetworks ?? [], requestsPerSecond: body.requestsPerSecond)
            try await blocking { [self] in try identities.createToken(record) }
            return try json(TokenView(record, secret: token.text), status: .created)
        }
    }

    /// Owners revoke their own tokens; revoking another's needs the admin capability.
    var revokeToken: AuthenticatedHandler {
        { [self] _, context, caller in
            let id = try parameter("token", context)
            try await blocking { [self] in
                guard let record = try identities.token(id: id) else { throw VaultError.unknownToken(id) }
                if record.owner != caller.name {
                    let decision = try authorize(caller, .admin, .vault, from: context.remoteIP)
                    guard decision.allowed else { throw APIError(.forbidden, "access denied: \(decision.reason)") }
                }
                try identities.revokeToken(id: id, at: Date())
            }
            return Response(status: .noContent)
        }
    }
}
