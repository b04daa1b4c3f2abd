import Crypto
import Foundation
import SealedFormat
import VaultCore

/// The unsealed keyring: versioned KEKs, the retirement floor and the blob-address key.
///
/// Wraps new data keys under the newest KEK; unwraps under any version at or above
/// `minimumDecryptionVersion`. Lives only in the memory of an unsealed process.
public struct Keyring: KeyWrapping, Sendable {
    public struct Version: Codable, Hashable, Sendable {
        public var version: UInt32
        public var createdAt: Date
        var key: String
    }

    /// 16 bytes identifying this keyring; recorded in every sealed file's header.
    public let id: [UInt8]
    public private(set) var versions: [Version]
    /// Versions below this are retired: they no longer unwrap data keys for reading.
    public private(set) var minimumDecryptionVersion: UInt32
    /// A keyring secret from which purpose-specific keys are derived (HKDF-SHA256).
    let secretSeed: [UInt8]
    /// The local certificate authority's private key (PEM), when the vault has one.
    public var certificateAuthorityKey: String?

    /// A new keyring with one KEK, version 1.
    public static func generate(now: Date = Date()) -> Keyring {
        Keyring(
            id: SecureRandom.bytes(16),
            versions: [Version(version: 1, createdAt: now, key: Hex.encode(SecureRandom.bytes(32)))],
            minimumDecryptionVersion: 1, secretSeed: SecureRandom.bytes(32))
    }

    init(id: [UInt8], versions: [Version], minimumDecryptionVersion: UInt32, secretSeed: [UInt8]) {
        self.id = id
        self.versions = versions
        self.minimumDecryptionVersion = minimumDecryptionVersion
        self.secretSeed = secretSeed
    }

    /// A 256-bit key for one purpose ("blob-address", "session", "totp"…), derived from the
    /// keyring's secret seed: HKDF-SHA256(seed, info: "mvault keyring v1 " + purpose).
    public func derivedKey(purpose: String) -> [UInt8] {
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: secretSeed), info: Array("mvault keyring v1 \(purpose)".utf8),
            outputByteCount: 32)
        return key.withUnsafeBytes { Array($0) }
    }

    public var newestVersion: UInt32 { versions.map(\.version).max() ?? 0 }

    /// Adds a KEK version; new files are wrapped under it from now on.
    @discardableResult
    public mutating func rotate(now: Date = Date()) -> UInt32 {
        let next = newestVersion + 1
        versions.append(Version(version: next, createdAt: now, key: Hex.encode(SecureRandom.bytes(32))))
        return next
    }

    /// Retires every version below `version`. Their keys are kept so `rewrap` can still move files
    /// off them, but reads of such files are refused until they are rewrapped.
    public mutating func retire(below version: UInt32) throws(KeyringError) {
        guard version <= newestVersion, version >= 1 else { throw .unknownVersion(version) }
        minimumDecryptionVersion = max(minimumDecryptionVersion, version)
    }

    /// The content address of a file with plaintext digest `sha256`: HMAC-SHA256 under a keyring
    /// secret, so equal files share a blob without the store learning their digests.
    public func blobAddress(forSHA256 sha256: [UInt8]) -> String {
        Hex.encode(
            HMAC<SHA256>.authenticationCode(
                for: sha256, using: SymmetricKey(data: derivedKey(purpose: "blob-address"))))
    }

    public func wrap(dataKey: [UInt8], headerPrefix: [UInt8]) throws -> KeyStanza {
        try kek(newestVersion).wrap(dataKey: dataKey, headerPrefix: headerPrefix)
    }

    public func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8]) throws -> [UInt8] {
        guard stanza.kekID == id else { throw KeyringError.foreignKey }
        guard stanza.kekVersion >= minimumDecryptionVersion else {
            throw KeyringError.retiredVersion(stanza.kekVersion)
        }
        return try kek(stanza.kekVersion).unwrap(stanza, headerPrefix: headerPrefix)
    }

    /// Unwraps under any version, retired or not. Only for moving a file to the newest version.
    public func unwrapForRewrap(_ stanza: KeyStanza, headerPrefix: [UInt8]) throws -> [UInt8] {
        guard stanza.kekID == id else { throw KeyringError.foreignKey }
        return try kek(stanza.kekVersion).unwrap(stanza, headerPrefix: headerPrefix)
    }

    func kek(_ version: UInt32) throws -> KeyEncryptionKey {
        guard let entry = versions.first(where: { $0.version == version }),
            let bytes = Hex.decode(entry.key), bytes.count == 32
        else { throw KeyringError.unknownVersion(version) }
        return KeyEncryptionKey(keyringID: id, version: version, keyBytes: bytes)
    }
}

extension Keyring: Codable {
    enum CodingKeys: String, CodingKey {
        case id, versions, minimumDecryptionVersion, secretSeed, certificateAuthorityKey
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard let id = Hex.decode(try c.decode(String.self, forKey: .id)), id.count == 16,
            let seed = Hex.decode(try c.decode(String.self, forKey: .secretSeed)), seed.count == 32
        else { throw KeyringError.corruptKeyring("bad key material") }
        self.init(
            id: id, versions: try c.decode([Version].self, forKey: .versions),
            minimumDecryptionVersion: try c.decode(UInt32.self, forKey: .minimumDecryptionVersion),
            secretSeed: seed)
        certificateAuthorityKey = try c.decodeIfPresent(String.self, forKey: .certificateAuthorityKey)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Hex.encode(id), forKey: .id)
        try c.encode(versions, forKey: .versions)
        try c.encode(minimumDecryptionVersion, forKey: .minimumDecryptionVersion)
        try c.encode(Hex.encode(secretSeed), forKey: .secretSeed)
        try c.encodeIfPresent(certificateAuthorityKey, forKey: .certificateAuthorityKey)
    }
}
