/// The fixed 132-byte header of an MVLT v1 file; see docs/format.md for the layout.
///
/// `parse` checks structure only. Authenticity is checked by `SealedFileReader`, which unwraps
/// the data key and verifies `mac`.
public struct SealedHeader: Hashable, Sendable {
    public static let magic: [UInt8] = Array("MVLT".utf8)
    public static let version: UInt8 = 1
    public static let algorithmAES256GCM: UInt8 = 1
    /// Bytes in an encoded header.
    public static let size = 132
    /// Bytes covered by the wrap's associated data, before the KEK id.
    public static let prefixSize = 20
    /// Bytes covered by the header MAC.
    public static let authenticatedSize = 100
    public static let noncePrefixSize = 7
    public static let tagSize = 16
    public static let minimumSegmentSize = 16
    public static let maximumSegmentSize = 1 << 24
    /// The segment size new files are written with: large enough to amortise per-call cost,
    /// small enough that each segment buffer stays below glibc's mmap threshold.
    public static let defaultSegmentSize = 1 << 16

    public var segmentSize: Int
    public var noncePrefix: [UInt8]
    public var stanza: KeyStanza
    public var mac: [UInt8]

    public init(segmentSize: Int, noncePrefix: [UInt8], stanza: KeyStanza, mac: [UInt8]) {
        self.segmentSize = segmentSize
        self.noncePrefix = noncePrefix
        self.stanza = stanza
        self.mac = mac
    }

    /// Parses the structure of the first `SealedHeader.size` bytes.
    /// - Throws: `SealedFormatError.notSealedFile`, `.unsupportedVersion` or `.headerFailure`.
    public static func parse(_ bytes: some Collection<UInt8>) throws(SealedFormatError) -> SealedHeader {
        let b = Array(bytes.prefix(size))
        guard b.count >= 4, Array(b[0..<4]) == magic else { throw .notSealedFile }
        guard b.count >= 5 else { throw .headerFailure }
        guard b[4] == version else { throw .unsupportedVersion(b[4]) }
        guard b.count == size else { throw .headerFailure }
        guard b[5] == algorithmAES256GCM, b[6] == 0, b[7] == 0, b[19] == 0 else {
            throw .headerFailure
        }
        let segmentSize = Int(readUInt32(b, at: 8))
        guard segmentSize >= minimumSegmentSize, segmentSize <= maximumSegmentSize,
            segmentSize & (segmentSize - 1) == 0
        else { throw .headerFailure }
        let stanza = KeyStanza(
            kekID: Array(b[20..<36]), kekVersion: readUInt32(b, at: 36),
            nonce: Array(b[40..<52]), wrappedKey: Array(b[52..<100]))
        return SealedHeader(
            segmentSize: segmentSize, noncePrefix: Array(b[12..<19]), stanza: stanza,
            mac: Array(b[100..<132]))
    }

    /// Bytes 0..<20: magic, version, algorithm, reserved, segment size, nonce prefix, reserved.
    public var prefix: [UInt8] {
        var out = Self.magic
        out += [Self.version, Self.algorithmAES256GCM, 0, 0]
        out += Self.bigEndian(UInt32(segmentSize))
        out += noncePrefix
        out.append(0)
        return out
    }

    /// Bytes 0..<100: everything the header MAC covers.
    public var authenticatedBytes: [UInt8] {
        prefix + stanza.kekID + Self.bigEndian(stanza.kekVersion) + stanza.nonce + stanza.wrappedKey
    }

    /// All 132 bytes.
    public var encoded: [UInt8] { authenticatedBytes + mac }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [
            UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
            UInt8(truncatingIfNeeded: value),
        ]
    }

    static func readUInt32(_ b: [UInt8], at i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}
