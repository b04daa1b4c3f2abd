import AuditLog
import Foundation
import Keyring
import SealedFormat
import Synchronization
import VaultCore
import VaultPKI

/// The keys of one vault while it runs: sealed, collecting unseal shares, or unsealed.
///
/// Shared by every process that holds a vault's keys — the key agent behind its Unix socket, and
/// a server in-process — so unsealing, sealing and key use behave the same everywhere.
/// Thread-safe.
///
/// - Important: KEKs and the root key never leave this object; only per-file data keys do.
public final class KeyHolder: VaultKeys, Sendable {
    struct State {
        var file: KeyringFile
        var progress: UnsealProgress?
        var keyring: Keyring?
        var rootKey: [UInt8]?
        /// `derivedKey(purpose:)` answers, kept until sealing (every request needs one).
        var derivedKeys: [String: [UInt8]] = [:]
        /// The HSM's session, when the HSM unsealed the vault: its signing key cosigns.
        var token: TokenSealer?
    }

    let keyringURL: URL
    let state: Mutex<State>

    /// Loads the sealed keyring of the vault at `layout`.
    public init(layout: VaultLayout) throws {
        keyringURL = layout.keyringFile
        state = Mutex(State(file: try KeyringFile.load(from: layout.keyringFile)))
    }

    public func status() -> KeyStatus {
        state.withLock { Self.status(of: $0) }
    }

    /// Gives one share (Shamir) or the passphrase.
    /// - Throws: `KeyringError` (wrong, duplicate or foreign share; wrong passphrase). When a full
    ///   set of shares fails to open the keyring, progress resets.
    public func unseal(share: String?, passphrase: String?) throws -> KeyStatus {
        try state.withLock { s in
            if s.keyring != nil { return Self.status(of: s) }
            let unsealKey: [UInt8]
            var given: [UnsealShare] = []
            switch s.file.seal {
            case .passphrase:
                guard let passphrase else { throw KeyringError.wrongSealType(expected: s.file.seal.summary) }
                unsealKey = try s.file.unsealKey(passphrase: passphrase)
            case .shamir, .pkcs11:
                // For an HSM-sealed vault, shares are the recovery path.
                guard let share else { throw KeyringError.wrongSealType(expected: s.file.seal.summary) }
                let threshold = Self.status(of: s).threshold
                let parsed = try UnsealShare(text: share)
                guard let vaultID = Hex.decode(s.file.vaultID) else {
                    throw KeyringError.corruptKeyring("bad vault id")
                }
                guard parsed.vaultID == Array(vaultID.prefix(8)) else { throw KeyringError.foreignShare }
                if s.file.recognizes(parsed) == false { throw KeyringError.unknownShare }
                var progress = s.progress ?? UnsealProgress(vaultID: vaultID, threshold: threshold)
                switch try progress.add(parsed) {
                case .needMore:
                    s.progress = progress
                    return Self.status(of: s)
                case .complete(let key):
                    s.progress = nil
                    unsealKey = key
                    given = progress.shares
                }
            }
            let opened = try s.file.open(unsealKey: unsealKey)
            s.keyring = opened.keyring
            s.rootKey = opened.rootKey
            if !given.isEmpty, !s.file.hasShareDigests {
                // A keyring from before share digests: these genuine shares let it recognise every one.
                var file = s.file
                file.addShareDigests(from: given)
                if (try? file.write(to: keyringURL)) != nil { s.file = file }
            }
            return Self.status(of: s)
        }
    }

    /// Unseals an HSM-sealed vault with its token: the root key is opened inside the HSM.
    /// - Throws: `HSMError` naming what is wrong (module missing, token absent, wrong PIN, key
    ///   gone); the vault stays sealed.
    public func unsealWithHSM(pin: String, module: String? = nil) throws -> KeyStatus {
        try state.withLock { s in
            if s.keyring != nil { return Self.status(of: s) }
            guard case .pkcs11(let config) = s.file.seal else {
                throw KeyringError.wrongSealType(expected: s.file.seal.summary)
            }
            let token = try TokenSealer.open(config, pin: pin, module: module)
            let opened = try s.file.open(sealer: token)
            s.token = token
            s.keyring = opened.keyring
            s.rootKey = opened.rootKey
            s.progress = nil
            return Self.status(of: s)
        }
    }

    /// Moves the unsealed vault between Shamir shares and an HSM without touching a payload:
    /// to the HSM (`module` and `token` given) a new key in the token seals the root key and the
    /// shares become recovery shares; back (nil), the recovery shares alone unseal it again.
    /// - Returns: the new seal, in words.
    public func migrateSeal(module: String?, token: String?, pin: String?) throws -> String {
        try state.withLock { s in
            guard let rootKey = s.rootKey else { throw VaultError.sealed }
            let file: KeyringFile
            if let module, let token {
                guard case .shamir = s.file.seal else {
                    throw VaultError.invalidArgument(
                        "only a vault sealed with Shamir shares moves to an HSM; this one uses \(s.file.seal.summary)")
                }
                let id = Hex.encode(SecureRandom.bytes(6))
                let (label, signingLabel) = ("mvault-root-" + id, "mvault-sign-" + id)
                let sealer = try TokenSealer.create(
                    module: module, token: token, label: label, signingLabel: signingLabel, pin: pin ?? "")
                do {
                    file = try s.file.migratedToHSM(
                        module: module, token: token, keyLabel: label, signingKeyLabel: signingLabel, sealer: sealer,
                        rootKey: rootKey)
                    try file.write(to: keyringURL)
                } catch {
                    try? sealer.destroy(signingLabel: signingLabel)
                    throw error
                }
                s.token = sealer
            } else {
                file = try s.file.migratedToShamir()
                try file.write(to: keyringURL)
            }
            s.file = file
            return file.seal.summary
        }
    }

    /// Forgets the shares given so far.
    public func resetUnseal() -> KeyStatus {
        state.withLock {
            $0.progress = nil
            return Self.status(of: $0)
        }
    }

    /// Forgets the shares given so far, for someone who proves to hold one of this vault's shares
    /// (over the network, where anyone could ask). A keyring from before share digests can only
    /// check that the share is well formed and names this vault.
    public func resetUnseal(proof share: String) throws -> KeyStatus {
        let parsed = try UnsealShare(text: share)
        return try state.withLock { s in
            guard let id = Hex.decode(s.file.vaultID), parsed.vaultID == Array(id.prefix(8)) else {
                throw KeyringError.foreignShare
            }
            guard s.file.recognizes(parsed) != false else { throw KeyringError.unknownShare }
            s.progress = nil
            return Self.status(of: s)
        }
    }

    /// Drops every key and any unseal progress.
    public func seal() {
        state.withLock {
            $0.keyring = nil
            $0.rootKey = nil
            $0.derivedKeys = [:]
            $0.progress = nil
            $0.token = nil
        }
    }

    /// Adds a KEK version and persists the keyring.
    public func rotate() throws -> UInt32 {
        try mutateKeyring { keyring in keyring.rotate() }
    }

    /// Retires versions below `version` and persists the keyring.
    /// - Returns: the new minimum decryption version.
    public func retire(below version: UInt32) throws -> UInt32 {
        try mutateKeyring { keyring in
            try keyring.retire(below: version)
            return keyring.minimumDecryptionVersion
        }
    }

    func mutateKeyring<T>(_ change: (inout Keyring) throws -> T) throws -> T {
        try state.withLock { s in
            guard var keyring = s.keyring, let rootKey = s.rootKey else { throw VaultError.sealed }
            let result = try change(&keyring)
            let file = try s.file.replacing(keyring: keyring, rootKey: rootKey)
            try file.write(to: keyringURL)
            s.file = file
            s.keyring = keyring
            return result
        }
    }

    func unsealed() throws -> Keyring {
        guard let keyring = state.withLock({ $0.keyring }) else { throw VaultError.sealed }
        return keyring
    }

    /// The vault's own CA (its key lives in the keyring), for issuing client certificates.
    public func certificateAuthority(certificate: URL) throws -> LocalCertificateAuthority {
        guard let key = try unsealed().certificateAuthorityKey,
            let pem = try? String(contentsOf: certificate, encoding: .utf8)
        else {
            throw VaultError.conflict(
                "this vault has no certificate authority of its own", hint: "issue client certificates with your own CA"
            )
        }
        return try LocalCertificateAuthority(certificatePEM: pem, keyPEM: key)
    }

    // MARK: VaultKeys

    public func requireUnsealed() throws { _ = try unsealed() }

    public func blobAddress(forSHA256 digest: [UInt8]) throws -> String {
        try unsealed().blobAddress(forSHA256: digest)
    }

    public func wrap(dataKey: [UInt8], headerPrefix: [UInt8]) throws -> KeyStanza {
        try unsealed().wrap(dataKey: dataKey, headerPrefix: headerPrefix)
    }

    public func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8]) throws -> [UInt8] {
        try unsealed().unwrap(stanza, headerPrefix: headerPrefix)
    }

    public func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8], forRewrap: Bool) throws -> [UInt8] {
        let keyring = try unsealed()
        return forRewrap
            ? try keyring.unwrapForRewrap(stanza, headerPrefix: headerPrefix)
            : try keyring.unwrap(stanza, headerPrefix: headerPrefix)
    }

    public func newestVersion() throws -> UInt32 { try unsealed().newestVersion }

    /// A purpose-specific key derived from the keyring; throws `.sealed` while sealed.
    public func derivedKey(purpose: String) throws -> [UInt8] {
        try state.withLock { s in
            guard let keyring = s.keyring else { throw VaultError.sealed }
            if let key = s.derivedKeys[purpose] { return key }
            let key = keyring.derivedKey(purpose: purpose)
            s.derivedKeys[purpose] = key
            return key
        }
    }

    public func watermarkSecret() throws -> [UInt8] { try derivedKey(purpose: VaultKeysPurpose.watermark) }

    public func signBackupManifest(_ text: String) throws -> String {
        try SignedNote.sign(
            text,
            by: [try BackupKeys.key(seed: derivedKey(purpose: BackupKeys.purpose))]
                + cosigners(name: BackupKeys.keyName))
    }

    /// The HSM's signing key as a note signer named `name`, when the HSM unsealed this vault and
    /// holds one; it adds its signature line next to the keyring's.
    public func cosigners(name: String) throws -> [any NoteSigner] {
        let (token, seal) = state.withLock { ($0.token, $0.file.seal) }
        guard let token, case .pkcs11(let config) = seal, let label = config.signingKeyLabel else { return [] }
        return [try token.signer(label: label, name: name)]
    }

    public func backupVerifier() throws -> String {
        try BackupKeys.key(seed: derivedKey(purpose: BackupKeys.purpose)).verifier.encoded
    }

    public func minimumDecryptionVersion() throws -> UInt32 { try unsealed().minimumDecryptionVersion }

    static func status(of s: State) -> KeyStatus {
        status(file: s.file, keyring: s.keyring, sharesGiven: s.progress?.shares.count ?? 0)
    }

    static func status(file: KeyringFile, keyring: Keyring?, sharesGiven: Int) -> KeyStatus {
        var threshold = 0
        if case .shamir(_, let t) = file.seal { threshold = t }
        if case .pkcs11(let h) = file.seal { threshold = h.recoveryThreshold }
        return KeyStatus(
            sealed: keyring == nil, sealType: file.seal.summary, sharesGiven: sharesGiven, threshold: threshold,
            versions: keyring?.versions.map {
                .init(
                    version: $0.version, createdAt: $0.createdAt,
                    retired: $0.version < keyring!.minimumDecryptionVersion)
            } ?? [],
            newestVersion: keyring?.newestVersion, minimumDecryptionVersion: keyring?.minimumDecryptionVersion)
    }
}
