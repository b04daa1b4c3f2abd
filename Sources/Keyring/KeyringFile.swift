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
    /// The root key is sealed by a key inside an HSM (PKCS#11); Shamir shares of an unseal key
    /// recover it when the HSM is lost.
    case pkcs11(HSMSeal)

    public var summary: String {
        switch self {
        case .shamir(let n, let t): "Shamir shares (\(t) of \(n))"
        case .passphrase(let p): "passphrase (Argon2id, \(p.memoryBytes >> 20) MiB, t=\(p.iterations))"
        case .pkcs11(let h):
            "PKCS#11 token \(h.token) (key \(h.keyLabel)), recovery shares (\(h.recoveryThreshold) of \(h.recoveryShares))"
        }
    }
}

/// Where an HSM-sealed vault's root key is sealed: a PKCS#11 module, a token, a key label.
public struct HSMSeal: Codable, Hashable, Sendable {
    public var module: String
    public var token: String
    public var keyLabel: String
    public var recoveryShares: Int
    public var recoveryThreshold: Int
    /// The ECDSA P-256 key pair in the token that cosigns checkpoints and backup manifests.
    public var signingKeyLabel: String?

    public init(
        module: String, token: String, keyLabel: String, recoveryShares: Int, recoveryThreshold: Int,
        signingKeyLabel: String? = nil
    ) {
        self.module = module
        self.token = token
        self.keyLabel = keyLabel
        self.signingKeyLabel = signingKeyLabel
        self.recoveryShares = recoveryShares
        self.recoveryThreshold = recoveryThreshold
    }
}

/// Seals and opens the root key with a key the process cannot read (inside an HSM).
public protocol RootKeySealer: Sendable {
    func seal(_ rootKey: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8]
    func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8]
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
    /// The root key sealed by the HSM (`pkcs11` vaults); `rootKey` is then the recovery copy.
    var hsmRootKey: Box?
    /// A digest of each unseal share, by x − 1 (`shareDigest`): one share can be told genuine on
    /// its own, so a stranger can neither feed the server a forged share nor reset its progress.
    /// Absent from keyrings made before; the first unseal with shares adds them.
    var shareDigests: [String]?

    /// What `create` chooses between.
    public enum Method: Sendable {
        case shamir(shares: Int, threshold: Int)
        case passphrase(String)
        /// Sealed by `sealer` (the HSM `seal` names), with Shamir recovery shares.
        case pkcs11(HSMSeal, any RootKeySealer)
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
        var hsm: (HSMSeal, any RootKeySealer)?
        var split: (n: Int, t: Int)?
        switch method {
        case .shamir(let n, let t): split = (n, t)
        case .pkcs11(let config, let sealer):
            split = (config.recoveryShares, config.recoveryThreshold)
            hsm = (config, sealer)
        case .passphrase: break
        }
        switch method {
        case .shamir, .pkcs11:
            let (n, t) = split!
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
            seal = hsm.map { .pkcs11($0.0) } ?? .shamir(shares: n, threshold: t)
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
        var file = KeyringFile(
            format: formatName, vaultID: Hex.encode(keyring.id), seal: seal,
            rootKey: try box(rootKey, key: unsealKey, label: "root key", vaultID: keyring.id),
            keyring: try box(
                JSONEncoder().encode(keyring), key: rootKey, label: "keyring", vaultID: keyring.id))
        if let (_, sealer) = hsm { try file.sealRootKey(rootKey, with: sealer) }
        if !shares.isEmpty { file.shareDigests = shares.map { Self.shareDigest($0, vaultID: keyring.id) } }
        return (file, keyring, rootKey, shares)
    }

    /// SHA-256 of the share with the vault's whole id: one-way, so the file does not give the share away.
    static func shareDigest(_ share: UnsealShare, vaultID: [UInt8]) -> String {
        let input =
            Array("mvault unseal share v1".utf8) + vaultID + [UInt8(share.threshold), share.point.x] + share.point.y
        return Hex.encode(Array(SHA256.hash(data: input)))
    }

    public var hasShareDigests: Bool { shareDigests != nil }

    /// Whether `share` is one of this vault's shares; nil when the keyring predates share digests.
    public func recognizes(_ share: UnsealShare) -> Bool? {
        guard let digests = shareDigests, let id = Hex.decode(vaultID) else { return nil }
        let index = Int(share.point.x) - 1
        guard share.vaultID == Array(id.prefix(8)), index >= 0, index < digests.count else { return false }
        return digests[index] == Self.shareDigest(share, vaultID: id)
    }

    /// Adds share digests to a keyring that has none, from `threshold` genuine shares (they
    /// opened the keyring): every other share is the same polynomials at its own x.
    public mutating func addShareDigests(from given: [UnsealShare]) {
        guard shareDigests == nil, let first = given.first, let id = Hex.decode(vaultID) else { return }
        let count: Int
        switch seal {
        case .shamir(let n, _): count = n
        case .pkcs11(let config): count = config.recoveryShares
        case .passphrase: return
        }
        shareDigests = (1...max(1, count)).map { x in
            let y = given.count == 1 ? first.point.y : Shamir.interpolate(given.map(\.point), at: UInt8(x))
            return Self.shareDigest(
                UnsealShare(vaultID: id, threshold: first.threshold, point: .init(x: UInt8(x), y: y)), vaultID: id)
        }
    }

    /// Seals `rootKey` with the HSM, as the copy `open(sealer:)` opens.
    mutating func sealRootKey(_ rootKey: [UInt8], with sealer: any RootKeySealer) throws {
        guard let id = Hex.decode(vaultID) else { throw KeyringError.corruptKeyring("bad vault id") }
        let nonce = SecureRandom.bytes(12)
        let sealed = try sealer.seal(rootKey, nonce: nonce, aad: Array("\(Self.formatName) hsm root key".utf8) + id)
        hsmRootKey = Box(nonce: Hex.encode(nonce), ciphertext: Hex.encode(sealed))
    }

    /// The file sealed by the HSM as well (`config`'s module, token and key), the Shamir shares it
    /// had becoming its recovery shares. Payloads and the root key do not change.
    public func migratedToHSM(
        module: String, token: String, keyLabel: String, signingKeyLabel: String?, sealer: any RootKeySealer,
        rootKey: [UInt8]
    ) throws -> KeyringFile {
        guard case .shamir(let n, let t) = seal else {
            throw VaultError.invalidArgument(
                "only a vault sealed with Shamir shares moves to an HSM (its shares become the recovery shares); this one uses \(seal.summary)"
            )
        }
        var copy = self
        copy.seal = .pkcs11(
            HSMSeal(
                module: module, token: token, keyLabel: keyLabel, recoveryShares: n, recoveryThreshold: t,
                signingKeyLabel: signingKeyLabel))
        try copy.sealRootKey(rootKey, with: sealer)
        return copy
    }

    /// The file sealed by its recovery shares alone again (the HSM's copy dropped).
    public func migratedToShamir() throws -> KeyringFile {
        guard case .pkcs11(let config) = seal else {
            throw VaultError.invalidArgument("this vault is not sealed by an HSM; it uses \(seal.summary)")
        }
        var copy = self
        copy.seal = .shamir(shares: config.recoveryShares, threshold: config.recoveryThreshold)
        copy.hsmRootKey = nil
        return copy
    }

    /// Opens the keyring with the HSM (`pkcs11` vaults).
    public func open(sealer: any RootKeySealer) throws -> (keyring: Keyring, rootKey: [UInt8]) {
        guard let id = Hex.decode(vaultID), id.count == 16 else { throw KeyringError.corruptKeyring("bad vault id") }
        guard let box = hsmRootKey, let nonce = Hex.decode(box.nonce), let sealed = Hex.decode(box.ciphertext) else {
            throw KeyringError.wrongSealType(expected: seal.summary)
        }
        let rootKey = try sealer.open(sealed, nonce: nonce, aad: Array("\(Self.formatName) hsm root key".utf8) + id)
        return (try openKeyring(rootKey: rootKey, id: id), rootKey)
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
        return (try openKeyring(rootKey: rootKey, id: id), rootKey)
    }

    func openKeyring(rootKey: [UInt8], id: [UInt8]) throws -> Keyring {
        guard let json = try? Self.unbox(keyring, key: rootKey, label: "keyring", vaultID: id),
            let keyring = try? JSONDecoder().decode(Keyring.self, from: Data(json)), keyring.id == id
        else { throw KeyringError.corruptKeyring("the keyring does not authenticate under the root key") }
        return keyring
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
