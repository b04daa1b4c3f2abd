import Crypto
import Foundation
import SealedFormat
import VaultCore

/// How a vault's unseal key is protected.
public enum SealConfiguration: Codable, Hashable, Sendable {
    /// The unseal key is split into `shares` Shamir shares; any `threshold` rebuild it.
    case shamir(shares: Int, threshold: Int)
    /// The unseal key is Argon2id(passphrase) with these parameters.
    case passphrase(Argon2idParameters)

    public var summary: String {
        switch self {
        case .shamir(let n, let t): "Shamir shares (\(t) of \(n))"
        case .passphrase(let p): "passphrase (Argon2id, \(p.memoryBytes >> 20) MiB, t=\(p.iterations))"
        }
    }
}

/// The keyring as stored on disk: readable only with the unseal key.
///
/// unseal key ─AES-256-GCM─▶ root key ─AES-256-GCM─▶ keyring (KEKs, blob-address key).
/// The root key never changes when the keyring does, so rotation rewrites only the last box.
public struct KeyringFile: Codable, Sendable {
    public static let formatName = "mvault-keyring-1"

    struct Box: Codable, Sendable {
        var nonce: String
        var ciphertext: String
    }

    var format: String
    /// The keyring id, hex; also the vault's id.
    public var vaultID: String
    public var seal: SealConfiguration
    var rootKey: Box
    var keyring: Box

    /// What `create` chooses between.
    public enum Method: Sendable {
        case shamir(shares: Int, threshold: Int)
        case passphrase(String)
    }

    /// Creates a keyring protected as `method` says.
    /// - Returns: the file, the open keyring, the root key and (for Shamir) the shares to hand out.
    public static func create(method: Method, certificateAuthorityKey: String? = nil, now: Date = Date()) throws -> (
        file: KeyringFile, keyring: Keyring, rootKey: [UInt8], shares: [UnsealShare]
    ) {
        var keyring = Keyring.generate(now: now)
        keyring.certificateAuthorityKey = certificateAuthorityKey
        let rootKey = SecureRandom.bytes(32)
        let unsealKey: [UInt8]
        let seal: SealConfiguration
        var shares: [UnsealShare] = []
        switch method {
        case .shamir(let n, let t):
            guard n >= 1, n <= 255 else {
                throw VaultError.invalidArgument("--shares must be between 1 and 255")
            }
            guard t >= 1, t <= n else {
                throw VaultError.invalidArgument("--threshold must be between 1 and --shares (\(n))")
            }
            guard (t == 1) == (n == 1) else {
                throw VaultError.invalidArgument(
                    "a threshold of 1 only makes sense with 1 share; use --threshold 2 or more")
            }
            unsealKey = SecureRandom.bytes(32)
            seal = .shamir(shares: n, threshold: t)
            if n == 1 {
                // One share is the key itself, with the same framing; x = 1, threshold 1.
                shares = [
                    UnsealShare(vaultID: keyring.id, threshold: 1, point: .init(x: 1, y: unsealKey))
                ]
            } else {
                shares = Shamir.split(unsealKey, shares: n, threshold: t).map {
                    UnsealShare(vaultID: keyring.id, threshold: t, point: $0)
                }
            }
        case .passphrase(let passphrase):
            guard passphrase.count >= 12 else { throw KeyringError.weakPassphrase }
            let parameters = Argon2idParameters.fresh()
            unsealKey = try parameters.deriveKey(from: passphrase)
            seal = .passphrase(parameters)
        }
        let file = KeyringFile(
            format: formatName, vaultID: Hex.encode(keyring.id), seal: seal,
            rootKey: try box(rootKey, key: unsealKey, label: "root key", vaultID: keyring.id),
            keyring: try box(
                JSONEncoder().encode(keyring), key: rootKey, label: "keyring", vaultID: keyring.id))
        return (file, keyring, rootKey, shares)
    }

    /// Opens the keyring with the unseal key.
    /// - Throws: `KeyringError.wrongShares`/`.wrongPassphrase` if the key is wrong.
    public func open(unsealKey: [UInt8]) throws -> (keyring: Keyring, rootKey: [UInt8]) {
        guard let id = Hex.decode(vaultID), id.count == 16 else {
            throw KeyringError.corruptKeyring("bad vault id")
        }
        guard let rootKey = try? Self.unbox(rootKey, key: unsealKey, label: "root key", vaultID: id)
        else {
            if case .passphrase = seal { throw KeyringError.wrongPassphrase }
            throw KeyringError.wrongShares
        }
        guard let json = try? Self.unbox(keyring, key: rootKey, label: "keyring", vaultID: id),
            let keyring = try? JSONDecoder().decode(Keyring.self, from: Data(json)), keyring.id == id
        else { throw KeyringError.corruptKeyring("the keyring does not authenticate under the root key") }
        return (keyring, rootKey)
    }

    /// The file with `keyring` re-encrypted under `rootKey` (after rotate or retire).
    public func replacing(keyring: Keyring, rootKey: [UInt8]) throws -> KeyringFile {
        var copy = self
        copy.keyring = try Self.box(
            JSONEncoder().encode(keyring), key: rootKey, label: "keyring", vaultID: keyring.id)
        return copy
    }

    /// Derives the unseal key of a passphrase-sealed vault.
    public func unsealKey(passphrase: String) throws -> [UInt8] {
        guard case .passphrase(let parameters) = seal else {
            throw KeyringError.wrongSealType(expected: seal.summary)
        }
        return try parameters.deriveKey(from: passphrase)
    }

    public static func load(from url: URL) throws -> KeyringFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw VaultError.io(path: url.path, detail: "cannot read the keyring file")
        }
        guard let file = try? JSONDecoder().decode(KeyringFile.self, from: data),
            file.format == formatName
        else { throw KeyringError.corruptKeyring("\(url.path) is not a \(formatName) file") }
        return file
    }

    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: url, mode: 0o600)
    }

    static func box(_ plaintext: some DataProtocol, key: [UInt8], label: String, vaultID: [UInt8]) throws
        -> Box
    {
        let nonce = SecureRandom.bytes(12)
        let sealed = try AES.GCM.seal(
            plaintext, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: nonce),
            authenticating: Array("\(formatName) \(label)".utf8) + vaultID)
        return Box(
            nonce: Hex.encode(nonce), ciphertext: Hex.encode(Array(sealed.ciphertext) + Array(sealed.tag)))
    }

    static func unbox(_ box: Box, key: [UInt8], label: String, vaultID: [UInt8]) throws -> [UInt8] {
        guard let nonce = Hex.decode(box.nonce), let all = Hex.decode(box.ciphertext), all.count >= 16
        else { throw KeyringError.corruptKeyring("bad \(label) box") }
        let sealed = try AES.GCM.SealedBox(
            nonce: AES.GCM.Nonce(data: nonce), ciphertext: all.dropLast(16), tag: all.suffix(16))
        return Array(
            try AES.GCM.open(
                sealed, using: SymmetricKey(data: key),
                authenticating: Array("\(formatName) \(label)".utf8) + vaultID))
    }
}
