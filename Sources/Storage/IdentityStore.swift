import Foundation
import VaultCore

/// Users and login sessions.
///
/// Error contract: throws `VaultError` — `.userExists`, `.unknownUser`, or `.io`/`.noSpace`.
/// Secrets are never stored: passwords as Argon2id hashes, session secrets as keyed hashes,
/// TOTP secrets sealed by the caller.
public protocol IdentityStore: Sendable {
    func createUser(_ user: UserRecord) throws
    func user(named name: String) throws -> UserRecord?
    /// Replaces the stored record of `user.name`.
    func updateUser(_ user: UserRecord) throws
    /// Replaces only the password hash (a rehash at login must not touch other fields).
    func setPasswordHash(user: String, hash: String) throws
    /// Removes the user and every session of theirs.
    func deleteUser(named name: String) throws
    /// Every user, sorted by name.
    func users() throws -> [UserRecord]
    func createSession(_ session: SessionRecord) throws
    func session(id: String) throws -> SessionRecord?
    func deleteSession(id: String) throws
    /// Ends every session of `user` (after a password change or an MFA reset).
    func deleteSessions(user: String) throws
    /// Removes one recovery code hash from `user`, atomically.
    /// - Returns: false if the user does not hold it (unknown or already used).
    func consumeRecoveryCode(user: String, hash: String) throws -> Bool
    /// Records `step` as `user`'s last TOTP step if it is later than the stored one, atomically.
    /// - Returns: false when it is not (the code was already used: a replay).
    func consumeTOTPStep(user: String, step: Int64) throws -> Bool
}
