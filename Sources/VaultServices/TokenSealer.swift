import AuditLog
import Crypto
import Foundation
import HSM
import Keyring

/// Seals the root key with an AES-256 key that lives inside a PKCS#11 token and cannot leave it
/// (AES-GCM computed by the token); holds the logged-in session for the token's signing key.
public struct TokenSealer: RootKeySealer {
    let session: PKCS11Session
    let key: PKCS11Session.ObjectHandle
    let label: String

    /// Logs in to the token `config` names (through `module` when given: the driver moved) and
    /// finds its key.
    public static func open(_ config: HSMSeal, pin: String, module: String? = nil) throws -> TokenSealer {
        let session = try PKCS11Module.load(module ?? config.module).session(token: config.token, pin: pin)
        guard let key = try session.findSecretKey(label: config.keyLabel) else {
            throw HSMError(
                "token \(config.token) holds no key labelled \(config.keyLabel): it was deleted, or this is another token; unseal with the recovery shares"
            )
        }
        return TokenSealer(session: session, key: key, label: config.keyLabel)
    }

    /// Creates the vault's sealing key, and its signing key pair `signingLabel`, in the token
    /// (refusing to reuse a label).
    public static func create(module: String, token: String, label: String, signingLabel: String, pin: String) throws
        -> TokenSealer
    {
        let session = try PKCS11Module.load(module).session(token: token, pin: pin)
        for existing in [label, signingLabel]
        where try session.findSecretKey(label: existing) != nil
            || session.findKey(private: true, label: existing) != nil
        {
            throw HSMError("token \(token) already holds a key labelled \(existing)")
        }
        let key = try session.generateAESKey(label: label)
        do {
            _ = try session.generateP256KeyPair(label: signingLabel)
        } catch {
            try? session.destroy(key)
            throw error
        }
        return TokenSealer(session: session, key: key, label: label)
    }

    /// Removes the vault's keys from the token (a vault that was never created).
    public func destroy(signingLabel: String?) throws {
        if let signingLabel {
            for isPrivate in [true, false] {
                if let object = try session.findKey(private: isPrivate, label: signingLabel) {
                    try session.destroy(object)
                }
            }
        }
        try session.destroy(key)
    }

    public func seal(_ rootKey: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try session.encrypt(key: key, iv: nonce, aad: aad, plaintext: rootKey)
    }

    public func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try session.decrypt(key: key, iv: nonce, aad: aad, ciphertext: sealed)
    }

    /// The token's signing key, as a note signer named `name`.
    public func signer(label: String, name: String) throws -> TokenSigner {
        guard let privateKey = try session.findKey(private: true, label: label),
            let publicKey = try session.findKey(private: false, label: label)
        else { throw HSMError("token \(session.token) holds no signing key labelled \(label)") }
        let point = try session.ecPoint(publicKey)
        guard let key = try? P256.Signing.PublicKey(x963Representation: point) else {
            throw HSMError("token \(session.token): the key \(label) is not an ECDSA P-256 key")
        }
        return TokenSigner(
            session: session, privateKey: privateKey, verifier: CheckpointVerifier(name: name, ecdsa: key))
    }

    /// The PIN, from `MVAULT_PKCS11_PIN` or the first line of the file `MVAULT_PKCS11_PIN_FILE`
    /// (never a command-line argument).
    public static func pin(environment: [String: String]) throws -> String {
        if let pin = environment["MVAULT_PKCS11_PIN"], !pin.isEmpty { return pin }
        if let path = environment["MVAULT_PKCS11_PIN_FILE"] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                let line = text.split(separator: "\n").first, !line.isEmpty
            else { throw HSMError("cannot read the PIN from \(path) (MVAULT_PKCS11_PIN_FILE)") }
            return String(line)
        }
        throw HSMError("no PIN for the HSM: set MVAULT_PKCS11_PIN or MVAULT_PKCS11_PIN_FILE")
    }
}

/// Signs notes with the ECDSA P-256 key inside the token (C2SP signed-note type 0x02: the
/// SHA-256 of the text signed in the token, the signature DER-encoded).
public struct TokenSigner: NoteSigner {
    let session: PKCS11Session
    let privateKey: PKCS11Session.ObjectHandle
    public let verifier: CheckpointVerifier

    public func signature(for text: [UInt8]) throws -> [UInt8] {
        let raw = try session.signECDSA(key: privateKey, digest: Array(SHA256.hash(data: text)))
        return Array(try P256.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
    }
}
