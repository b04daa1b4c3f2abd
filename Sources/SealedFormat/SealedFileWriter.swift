/// Seals a stream of plaintext into an MVLT v1 file, one segment at a time.
///
/// Memory use is one segment, whatever the input size. Call `append` any number of times, then
/// `finish` exactly once; write `header.encoded` first, then everything passed to the sinks.
public struct SealedFileWriter {
    public let header: SealedHeader
    let cipher: SegmentCipher
    var pending: [UInt8]
    var nextSegment: UInt64 = 0
    var finished = false

    /// Starts a file under a fresh random data key wrapped by `keys`.
    public init(keys: some KeyWrapping, segmentSize: Int = SealedHeader.defaultSegmentSize) throws {
        try self.init(
            dataKey: SecureRandom.bytes(32), noncePrefix: SecureRandom.bytes(SealedHeader.noncePrefixSize),
            segmentSize: segmentSize, wrap: { try keys.wrap(dataKey: $0, headerPrefix: $1) })
    }

    /// Starts a file with caller-chosen randomness. Only for reproducible test vectors.
    public init(
        dataKey: [UInt8], noncePrefix: [UInt8], segmentSize: Int,
        wrap: ([UInt8], [UInt8]) throws -> KeyStanza
    ) throws {
        precondition(dataKey.count == 32 && noncePrefix.count == SealedHeader.noncePrefixSize)
        precondition(
            segmentSize >= SealedHeader.minimumSegmentSize && segmentSize <= SealedHeader.maximumSegmentSize
                && segmentSize & (segmentSize - 1) == 0)
        let placeholder = KeyStanza(
            kekID: [UInt8](repeating: 0, count: 16), kekVersion: 0,
            nonce: [UInt8](repeating: 0, count: 12), wrappedKey: [])
        var header = SealedHeader(
            segmentSize: segmentSize, noncePrefix: noncePrefix, stanza: placeholder, mac: [])
        header.stanza = try wrap(dataKey, header.prefix)
        cipher = SegmentCipher(dataKey: dataKey, noncePrefix: noncePrefix)
        header.mac = cipher.mac(header.authenticatedBytes)
        self.header = header
        pending = []
        pending.reserveCapacity(segmentSize)
    }

    /// Seals every complete segment of `bytes` that is known not to be the last one. With
    /// `threads` > 1, the whole segments of `bytes` are sealed on that many threads at once and
    /// still reach `sink` in order.
    public mutating func append(
        _ bytes: UnsafeRawBufferPointer, threads: Int = 1, to sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        precondition(!finished, "append after finish")
        let size = header.segmentSize
        var rest = bytes[...]
        // Top up a partly filled segment first.
        if !pending.isEmpty {
            let take = min(size - pending.count, rest.count)
            pending += rest.prefix(take)
            rest = rest.dropFirst(take)
            if pending.count == size && !rest.isEmpty {
                try sealPending(last: false, to: sink)
            }
        }
        // Seal whole segments straight from the input while more input follows them.
        let whole = pending.isEmpty ? (rest.count - 1) / size : 0
        if threads > 1 && whole > 1 {
            guard nextSegment + UInt64(whole) - 1 <= UInt64(UInt32.max) else { throw SealedFormatError.tooLarge }
            let boxes = try cipher.seal(
                segmentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(whole * size)), segmentSize: size,
                first: nextSegment, threads: threads)
            for box in boxes { try SegmentCipher.emit(box, to: sink) }
            nextSegment += UInt64(whole)
            rest = rest.dropFirst(whole * size)
        }
        while pending.isEmpty && rest.count > size {
            let segment = UnsafeRawBufferPointer(rebasing: rest.prefix(size))
            try sealSegment(segment, last: false, to: sink)
            rest = rest.dropFirst(size)
        }
        if !rest.isEmpty {
            if pending.count == size { try sealPending(last: false, to: sink) }
            pending += rest
        }
    }

    /// Seals the final segment. A file with no plaintext still gets one (empty) segment.
    public mutating func finish(to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        precondition(!finished, "finish called twice")
        try sealPending(last: true, to: sink)
        finished = true
    }

    private mutating func sealPending(last: Bool, to sink: (UnsafeRawBufferPointer) throws -> Void)
        throws
    {
        let segment = pending
        try segment.withUnsafeBytes { try sealSegment($0, last: last, to: sink) }
        pending.removeAll(keepingCapacity: true)
    }

    private mutating func sealSegment(
        _ plaintext: UnsafeRawBufferPointer, last: Bool, to sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard nextSegment <= UInt64(UInt32.max) else { throw SealedFormatError.tooLarge }
        try cipher.seal(plaintext, segment: nextSegment, last: last, to: sink)
        nextSegment += 1
    }
}
