import AuditLog
import Crypto
import Keyring
import VaultCore

/// The key that signs backup manifests: Ed25519 from the keyring, like the checkpoint key but
/// its own (`mvault-backup`).
public enum BackupKeys {
    public static let purpose = "backup-manifest"
    public static let keyName = "mvault-backup"

    public static func key(seed: [UInt8]) throws -> CheckpointKey {
        try CheckpointKey(name: keyName, seed: seed)
    }
}

/// The audit log's keys, derived from the keyring: the Ed25519 key that signs checkpoints, and
/// the HMAC key for values the log must not show.
public enum AuditKeys {
    public static let checkpointPurpose = "audit-checkpoint"
    public static let hmacPurpose = "audit-hmac"

    public static let checkpointKeyName = "mvault-audit"

    public static func checkpointKey(seed: [UInt8]) throws -> CheckpointKey {
        try CheckpointKey(name: checkpointKeyName, seed: seed)
    }

    /// `hmac-sha256:HEX` of `value`.
    public static func hmac(_ value: String, key: [UInt8]) -> String {
        "hmac-sha256:"
            + Hex.encode(Array(HMAC<SHA256>.authenticationCode(for: Array(value.utf8), using: SymmetricKey(data: key))))
    }
}
