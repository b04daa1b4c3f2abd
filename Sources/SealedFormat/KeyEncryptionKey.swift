import Crypto

/// A 256-bit key-encryption key (KEK) with its keyring id and version.
///
/// Wraps data keys with AES-256-GCM under a random 96-bit nonce; see docs/format.md.
public struct KeyEncryptionKey: KeyWrapping, Sendable {
    public let keyringID: [UInt8]
    public let version: UInt32
    let key: SymmetricKey

    /// - Parameters:
    ///   - keyringID: 16 bytes identifying the keyring.
    ///   - version: this KEK's version in that keyring.
    ///   - keyBytes: 32 bytes of key material.
    public init(keyringID: [UInt8], version: UInt32, keyBytes: [UInt8]) {
        precondition(keyringID.count == 16 && keyBytes.count == 32)
        self.keyringID = keyringID
        self.version = version
        self.key = SymmetricKey(data: keyBytes)
    }

    public func wrap(dataKey: [UInt8], headerPrefix: [UInt8]) throws -> KeyStanza {
        try wrap(dataKey: dataKey, headerPrefix: headerPrefix, nonce: SecureRandom.bytes(12))
    }

    /// Wraps with a caller-chosen nonce. Only for reproducible test vectors.
    public func wrap(dataKey: [UInt8], headerPrefix: [UInt8], nonce: [UInt8]) throws -> KeyStanza {
        let aad = KeyStanza.associatedData(
            headerPrefix: headerPrefix, kekID: keyringID, kekVersion: version)
        let box = try AES.GCM.seal(
            dataKey, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
        return KeyStanza(
            kekID: keyringID, kekVersion: version, nonce: nonce,
            wrappedKey: Array(box.ciphertext) + Array(box.tag))
    }

    /// - Throws: `SealedFormatError.headerFailure` when the stanza is not this KEK's or was altered.
    public func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8]) throws -> [UInt8] {
        guard stanza.kekID == keyringID, stanza.kekVersion == version, stanza.nonce.count == 12,
            stanza.wrappedKey.count == 48
        else { throw SealedFormatError.headerFailure }
        let aad = KeyStanza.associatedData(
            headerPrefix: headerPrefix, kekID: stanza.kekID, kekVersion: stanza.kekVersion)
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: stanza.nonce), ciphertext: stanza.wrappedKey[0..<32],
                tag: stanza.wrappedKey[32..<48])
            return Array(try AES.GCM.open(box, using: key, authenticating: aad))
        } catch {
            throw SealedFormatError.headerFailure
        }
    }
}

/// Cryptographically secure random bytes, from swift-crypto's generator.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        while out.count < count {
            let key = SymmetricKey(size: .bits256)
            key.withUnsafeBytes { out += $0.prefix(count - out.count) }
        }
        return out
    }
}
