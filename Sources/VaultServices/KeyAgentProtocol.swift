import Foundation

/// Messages between the CLI and the key agent, one JSON object per line.
struct AgentRequest: Codable {
    enum Operation: String, Codable {
        case status, unseal, resetUnseal, seal, wrap, unwrap, blobAddress, rotate, retire, watermarkSecret,
            auditVerifier, auditHash, signBackupManifest, backupVerifier, migrateSeal
    }

    var op: Operation
    var share: String?
    var passphrase: String?
    /// The HSM's PIN (an HSM-sealed vault).
    var pin: String?
    /// The token to migrate to (`migrateSeal`; none: back to Shamir shares).
    var token: String?
    /// Where the HSM's PKCS#11 module is now, if not where the vault recorded it.
    var module: String?
    var dataKey: String?
    var headerPrefix: String?
    var kekID: String?
    var kekVersion: UInt32?
    var nonce: String?
    var wrappedKey: String?
    var forRewrap: Bool?
    var sha256: String?
    /// A value to HMAC for the audit log.
    var value: String?
    var version: UInt32?

    init(_ op: Operation) { self.op = op }
}

struct AgentResponse: Codable {
    var ok: Bool
    var error: String?
    /// Machine-readable error class: sealed, headerFailure, retired, foreignKey, keyring, unseal.
    var code: String?
    var retiredVersion: UInt32?
    var status: KeyStatus?
    var dataKey: String?
    var kekID: String?
    var kekVersion: UInt32?
    var nonce: String?
    var wrappedKey: String?
    var address: String?
    var version: UInt32?
    var secret: String?

    static func failure(_ message: String, code: String) -> AgentResponse {
        var r = AgentResponse(ok: false)
        r.error = message
        r.code = code
        return r
    }
}

/// What `mvault status` shows about the keys.
public struct KeyStatus: Codable, Sendable, Equatable {
    public struct Version: Codable, Sendable, Equatable {
        public var version: UInt32
        public var createdAt: Date
        public var retired: Bool
    }

    public var sealed: Bool
    public var sealType: String
    /// Shares given so far toward the threshold (Shamir only).
    public var sharesGiven: Int
    public var threshold: Int
    public var versions: [Version]
    public var newestVersion: UInt32?
    public var minimumDecryptionVersion: UInt32?
}
