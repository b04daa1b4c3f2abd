import AuditLog
import Keyring
import SealedFormat
import Storage
import VaultCore

/// What vault operations need from whoever holds the keys: the key agent, or an in-process
/// keyring (a server, or a test).
public protocol VaultKeys: KeyWrapping {
    /// Throws `VaultError.sealed` unless keys are available.
    func requireUnsealed() throws
    /// The content address for a file with this plaintext SHA-256.
    func blobAddress(forSHA256 digest: [UInt8]) throws -> String
    /// Unwraps; with `forRewrap`, also under retired versions.
    func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8], forRewrap: Bool) throws -> [UInt8]
    /// The KEK version new files are wrapped under.
    func newestVersion() throws -> UInt32
    /// Versions below this are retired.
    func minimumDecryptionVersion() throws -> UInt32
    /// The secret every watermark key of this vault is derived from (owner marks and recipient
    /// codes; docs/watermark.md). Throws `VaultError.sealed` while sealed.
    func watermarkSecret() throws -> [UInt8]
    /// `text` as a signed note, signed by the vault's backup key (docs/backup.md).
    func signBackupManifest(_ text: String) throws -> String
    /// The backup key's note verifier key (`name+hash+key`).
    func backupVerifier() throws -> String
}

extension KeyAgentClient: VaultKeys {
    public func requireUnsealed() throws {
        guard try !status().sealed else { throw VaultError.sealed }
    }

    public func newestVersion() throws -> UInt32 {
        guard let v = try status().newestVersion else { throw VaultError.sealed }
        return v
    }

    public func minimumDecryptionVersion() throws -> UInt32 {
        guard let v = try status().minimumDecryptionVersion else { throw VaultError.sealed }
        return v
    }
}

/// An unsealed keyring held by this process.
public struct InProcessKeys: VaultKeys {
    public let keyring: Keyring

    public init(keyring: Keyring) {
        self.keyring = keyring
    }

    public func requireUnsealed() throws {}
    public func blobAddress(forSHA256 digest: [UInt8]) throws -> String {
        keyring.blobAddress(forSHA256: digest)
    }
    public func wrap(dataKey: [UInt8], headerPrefix: [UInt8]) throws -> KeyStanza {
        try keyring.wrap(dataKey: dataKey, headerPrefix: headerPrefix)
    }
    public func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8]) throws -> [UInt8] {
        try keyring.unwrap(stanza, headerPrefix: headerPrefix)
    }
    public func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8], forRewrap: Bool) throws -> [UInt8] {
        forRewrap
            ? try keyring.unwrapForRewrap(stanza, headerPrefix: headerPrefix)
            : try keyring.unwrap(stanza, headerPrefix: headerPrefix)
    }
    public func newestVersion() throws -> UInt32 { keyring.newestVersion }
    public func minimumDecryptionVersion() throws -> UInt32 { keyring.minimumDecryptionVersion }
    public func watermarkSecret() throws -> [UInt8] { keyring.derivedKey(purpose: VaultKeysPurpose.watermark) }
    public func signBackupManifest(_ text: String) throws -> String {
        try SignedNote.sign(text, by: try BackupKeys.key(seed: keyring.derivedKey(purpose: BackupKeys.purpose)))
    }
    public func backupVerifier() throws -> String {
        try BackupKeys.key(seed: keyring.derivedKey(purpose: BackupKeys.purpose)).verifier.encoded
    }
}

/// Purposes of keys derived from the keyring.
public enum VaultKeysPurpose {
    public static let watermark = "watermark"
}

/// A blob as a `SealedSource`.
struct BlobSource: SealedSource {
    let reader: any BlobReader
    var size: UInt64 { reader.size }
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try reader.read(at: offset, into: buffer)
    }
}
