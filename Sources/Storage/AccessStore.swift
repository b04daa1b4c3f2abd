import Foundation
import VaultCore

/// Roles, grants and API tokens.
///
/// Error contract: throws `VaultError` — `.roleExists`, `.unknownRole`, `.unknownGrant`,
/// `.unknownToken`, `.unknownUser`, `.conflict`, or `.io`/`.noSpace`. The built-in roles exist from
/// the start and cannot be deleted or have their capabilities changed.
public protocol AccessStore: Sendable {
    /// Every role, sorted by name.
    func roles() throws -> [RoleRecord]
    func role(named name: String) throws -> RoleRecord?
    func createRole(_ role: RoleRecord) throws
    /// Replaces the stored record of `role.name` (for built-ins, only `requireMFA` and
    /// `allowedNetworks` may differ).
    func updateRole(_ role: RoleRecord) throws
    /// - Throws: `.conflict` for a built-in role, or one a user or grant still refers to.
    func deleteRole(named name: String) throws

    /// Every grant, oldest first.
    func grants() throws -> [GrantRecord]
    /// Grants to `user` and to any of `roles`.
    func grants(user: String, roles: [String]) throws -> [GrantRecord]
    /// - Throws: `.unknownUser` / `.unknownRole` when the subject does not exist.
    func createGrant(_ grant: GrantRecord) throws
    func deleteGrant(id: String) throws
    /// Records that `id` decided a request at `date` (stored at most once a minute per grant).
    func touchGrant(id: String, at date: Date) throws

    /// - Throws: `.unknownUser` when the owner does not exist.
    func createToken(_ token: TokenRecord) throws
    func token(id: String) throws -> TokenRecord?
    /// Tokens of `owner`, or every token when nil; newest first.
    func tokens(owner: String?) throws -> [TokenRecord]
    func revokeToken(id: String, at date: Date) throws
    func touchToken(id: String, at date: Date) throws
    /// Records that token `id` was used from `network` (kept even after the token is revoked).
    func recordTokenNetwork(id: String, network: String, at date: Date) throws -> NetworkSighting

    /// - Throws: `.unknownUser` when the certificate's user does not exist.
    func createCertificate(_ certificate: CertificateRecord) throws
    func certificate(serial: String) throws -> CertificateRecord?
    /// Every certificate, newest first.
    func certificates() throws -> [CertificateRecord]
    func revokeCertificate(serial: String, at date: Date) throws
}
