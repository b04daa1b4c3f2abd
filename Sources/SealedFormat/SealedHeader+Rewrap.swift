extension SealedHeader {
    /// This header with a new key stanza and its MAC recomputed, for moving a file to a new KEK
    /// without touching its payload.
    ///
    /// - Parameters:
    ///   - dataKey: the file's data key, unwrapped from the current stanza.
    ///   - wrap: wraps `dataKey` for the given header prefix (under the newest KEK).
    /// - Throws: `SealedFormatError.headerFailure` if the current header does not authenticate
    ///   under `dataKey`, so a tampered header is never re-blessed.
    public func rewrapped(dataKey: [UInt8], wrap: ([UInt8]) throws -> KeyStanza) throws -> SealedHeader {
        let cipher = SegmentCipher(dataKey: dataKey, noncePrefix: noncePrefix)
        guard cipher.isValidMAC(mac, for: authenticatedBytes) else { throw SealedFormatError.headerFailure }
        var copy = self
        copy.stanza = try wrap(prefix)
        copy.mac = cipher.mac(copy.authenticatedBytes)
        return copy
    }
}
