import Foundation
import HSM
import Keyring

/// Seals the root key with an AES-256 key that lives inside a PKCS#11 token and cannot leave it
/// (AES-GCM computed by the token).
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

    /// Creates the vault's key in the token (refusing to reuse a label).
    public static func create(module: String, token: String, label: String, pin: String) throws -> TokenSealer {
        let session = try PKCS11Module.load(module).session(token: token, pin: pin)
        if try session.findSecretKey(label: label) != nil {
            throw HSMError("token \(token) already holds a key labelled \(label)")
        }
        return TokenSealer(session: session, key: try session.generateAESKey(label: label), label: label)
    }

    /// Removes the key from the token (a vault that was never created).
    public func destroy() throws { try session.destroy(key) }

    public func seal(_ rootKey: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try session.encrypt(key: key, iv: nonce, aad: aad, plaintext: rootKey)
    }

    public func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try session.decrypt(key: key, iv: nonce, aad: aad, ciphertext: sealed)
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
