import Foundation

/// A person's account.
public struct UserRecord: Codable, Hashable, Sendable {
    public var name: String
    /// Argon2id PHC string.
    public var passwordHash: String
    /// Role names (admin, publisher, consumer, auditor, or custom).
    public var roles: [String]
    /// The TOTP secret, sealed under a vault key (nil until MFA is enrolled).
    public var sealedTOTPSecret: String?
    /// The last TOTP step accepted, so a code is never accepted twice.
    public var totpLastStep: Int64?
    /// A TOTP secret being enrolled, sealed; it becomes `sealedTOTPSecret` once a code from it is
    /// confirmed, so a botched enrollment never locks the user out.
    public var pendingTOTPSecret: String?
    /// Keyed hashes of the unused recovery codes.
    public var recoveryCodeHashes: [String]
    public var createdAt: Date

    public init(
        name: String, passwordHash: String, roles: [String], sealedTOTPSecret: String? = nil,
        totpLastStep: Int64? = nil, pendingTOTPSecret: String? = nil, recoveryCodeHashes: [String] = [],
        createdAt: Date
    ) {
        self.name = name
        self.passwordHash = passwordHash
        self.roles = roles
        self.sealedTOTPSecret = sealedTOTPSecret
        self.totpLastStep = totpLastStep
        self.pendingTOTPSecret = pendingTOTPSecret
        self.recoveryCodeHashes = recoveryCodeHashes
        self.createdAt = createdAt
    }
}

/// A login session. The bearer secret itself is never stored, only its keyed hash.
public struct SessionRecord: Codable, Hashable, Sendable {
    public var id: String
    public var secretHash: String
    public var user: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(id: String, secretHash: String, user: String, createdAt: Date, expiresAt: Date) {
        self.id = id
        self.secretHash = secretHash
        self.user = user
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// Rules for user names: 1–64 of lowercase letters, digits, `.`, `_`, `-`, `@`.
public enum UserName {
    public static func validate(_ name: String) throws(VaultError) {
        guard !name.isEmpty, name.utf8.count <= 64,
            name.utf8.allSatisfy({
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
                    || $0 == 0x40
            })
        else {
            throw .invalidArgument(
                "invalid user name '\(name)': use 1 to 64 lowercase letters, digits, '.', '_', '-' or '@'")
        }
    }
}
