/// The wrapped data key carried in a sealed file's header, and the KEK that wrapped it.
public struct KeyStanza: Hashable, Sendable {
    /// Identifier of the keyring the KEK belongs to (16 bytes).
    public var kekID: [UInt8]
    /// KEK version inside that keyring.
    public var kekVersion: UInt32
    /// AES-GCM nonce used for the wrap (12 bytes).
    public var nonce: [UInt8]
    /// Encrypted data key followed by its GCM tag (32 + 16 bytes).
    public var wrappedKey: [UInt8]

    public init(kekID: [UInt8], kekVersion: UInt32, nonce: [UInt8], wrappedKey: [UInt8]) {
        self.kekID = kekID
        self.kekVersion = kekVersion
        self.nonce = nonce
        self.wrappedKey = wrappedKey
    }

    /// The associated data bound to the wrap: the header's first 20 bytes, the KEK id and version.
    ///
    /// Binding the header prefix (which holds the per-file nonce prefix) ties a wrapped key to
    /// exactly one file, so a stanza copied into another file's header fails to unwrap.
    public static func associatedData(headerPrefix: [UInt8], kekID: [UInt8], kekVersion: UInt32)
        -> [UInt8]
    {
        headerPrefix + kekID + SealedHeader.bigEndian(kekVersion)
    }
}

/// Wraps fresh data keys for new files and unwraps the data keys of existing ones.
///
/// Implemented by a keyring holding KEKs in memory, or by a client of a key agent.
/// Errors thrown are the implementation's own (key unknown, retired, vault sealed); a stanza that
/// does not authenticate must be reported as `SealedFormatError.headerFailure`.
public protocol KeyWrapping: Sendable {
    /// Wraps `dataKey` under the newest KEK, binding it to `headerPrefix`.
    func wrap(dataKey: [UInt8], headerPrefix: [UInt8]) throws -> KeyStanza
    /// Recovers the data key from `stanza`, checking it was bound to `headerPrefix`.
    func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8]) throws -> [UInt8]
}
