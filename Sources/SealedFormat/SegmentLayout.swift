/// Where each segment of a sealed file's payload lies, computed from sizes alone.
///
/// A payload of P plaintext bytes has max(1, ⌈P/S⌉) segments; every segment but the last holds
/// exactly S bytes, the last holds 1…S bytes (0 only when the file is empty). Each is followed
/// by a 16-byte GCM tag.
public struct SegmentLayout: Hashable, Sendable {
    public let segmentSize: Int
    public let segmentCount: UInt64
    public let plaintextSize: UInt64

    /// The layout of a file holding `plaintextSize` bytes.
    public init(segmentSize: Int, plaintextSize: UInt64) throws(SealedFormatError) {
        let s = UInt64(segmentSize)
        let count = max(1, (plaintextSize + s - 1) / s)
        guard count <= UInt64(UInt32.max) + 1 else { throw .tooLarge }
        self.segmentSize = segmentSize
        self.segmentCount = count
        self.plaintextSize = plaintextSize
    }

    /// The layout implied by a sealed file of `fileSize` bytes.
    /// - Throws: `.headerFailure` if the header itself is cut short, `.payloadFailure` naming the
    ///   segment where a truncated or extended payload stops making sense.
    public init(segmentSize: Int, fileSize: UInt64) throws(SealedFormatError) {
        let headerSize = UInt64(SealedHeader.size)
        guard fileSize >= headerSize else { throw .headerFailure }
        let body = fileSize - headerSize
        let full = UInt64(segmentSize + SealedHeader.tagSize)
        guard body > 0 else { throw .payloadFailure(segment: 0) }
        let count = (body + full - 1) / full
        let lastCipher = body - (count - 1) * full
        guard lastCipher >= UInt64(SealedHeader.tagSize) else {
            throw .payloadFailure(segment: count - 1)
        }
        let lastPlain = lastCipher - UInt64(SealedHeader.tagSize)
        guard lastPlain > 0 || count == 1 else { throw .payloadFailure(segment: count - 1) }
        guard count <= UInt64(UInt32.max) + 1 else { throw .tooLarge }
        self.segmentSize = segmentSize
        self.segmentCount = count
        self.plaintextSize = (count - 1) * UInt64(segmentSize) + lastPlain
    }

    /// Total bytes of the sealed file: header plus every segment and tag.
    public var fileSize: UInt64 {
        UInt64(SealedHeader.size) + plaintextSize + segmentCount * UInt64(SealedHeader.tagSize)
    }

    /// Offset in the file of segment `index`'s ciphertext.
    public func fileOffset(ofSegment index: UInt64) -> UInt64 {
        UInt64(SealedHeader.size) + index * UInt64(segmentSize + SealedHeader.tagSize)
    }

    /// Plaintext bytes in segment `index`.
    public func plaintextLength(ofSegment index: UInt64) -> Int {
        if index + 1 < segmentCount { return segmentSize }
        return Int(plaintextSize - (segmentCount - 1) * UInt64(segmentSize))
    }

    /// The segments holding plaintext bytes `range`.
    public func segments(covering range: Range<UInt64>) -> ClosedRange<UInt64>? {
        guard !range.isEmpty else { return nil }
        let s = UInt64(segmentSize)
        return (range.lowerBound / s)...((range.upperBound - 1) / s)
    }
}
