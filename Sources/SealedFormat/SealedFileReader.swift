import Foundation

/// Random-access bytes a sealed file is read from (a local file, an object in a bucket…).
public protocol SealedSource {
    /// Total size in bytes.
    var size: UInt64 { get }
    /// Fills `buffer` completely with the bytes starting at `offset`.
    /// - Throws: if fewer bytes are available, or on an I/O error.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
}

/// An MVLT v1 file whose header has been authenticated; reads any plaintext range of it.
///
/// Opening unwraps the data key and checks the header MAC; each `read` authenticates exactly the
/// segments covering the requested bytes, in order, before handing any of their plaintext out.
public struct SealedFileReader<Source: SealedSource> {
    public let header: SealedHeader
    public let layout: SegmentLayout
    let source: Source
    let cipher: SegmentCipher

    /// Authenticates the header of `source` using a data key unwrapped by `keys`.
    /// - Throws: `SealedFormatError`, or whatever `keys.unwrap` throws (sealed vault, retired key).
    public init(source: Source, keys: some KeyWrapping) throws {
        guard source.size >= UInt64(SealedHeader.size) else {
            var head = [UInt8](repeating: 0, count: Int(source.size))
            try head.withUnsafeMutableBytes { try source.read(at: 0, into: $0) }
            _ = try SealedHeader.parse(head)
            throw SealedFormatError.headerFailure
        }
        var head = [UInt8](repeating: 0, count: SealedHeader.size)
        try head.withUnsafeMutableBytes { try source.read(at: 0, into: $0) }
        let header = try SealedHeader.parse(head)
        let dataKey = try keys.unwrap(header.stanza, headerPrefix: header.prefix)
        let cipher = SegmentCipher(dataKey: dataKey, noncePrefix: header.noncePrefix)
        guard cipher.isValidMAC(header.mac, for: header.authenticatedBytes) else {
            throw SealedFormatError.headerFailure
        }
        self.header = header
        self.cipher = cipher
        self.source = source
        self.layout = try SegmentLayout(segmentSize: header.segmentSize, fileSize: source.size)
    }

    public var plaintextSize: UInt64 { layout.plaintextSize }

    /// Decrypts plaintext bytes `range` and passes them to `sink` in order, in pieces. With
    /// `threads` > 1 (for a process reading one large file; a server serving many reads keeps the
    /// default), segments are read 2 MiB at a time and authenticated on the other threads while
    /// `sink` takes the previous batch; `sink` is still called one piece at a time, in order.
    /// - Throws: `SealedFormatError.payloadFailure(segment:)` at the first bad segment, before any
    ///   of that segment's bytes reach `sink`.
    public func read(
        _ range: Range<UInt64>, threads: Int = 1, to sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard range.upperBound <= layout.plaintextSize else { throw SealedFormatError.rangeOutOfBounds }
        guard let segments = layout.segments(covering: range) else {
            if layout.plaintextSize == 0 { try readEmpty() }
            return
        }
        try withoutActuallyEscaping(sink) { try read(segments, of: range, threads: threads, to: $0) }
    }

    private func read(
        _ segments: ClosedRange<UInt64>, of range: Range<UInt64>, threads: Int,
        to sink: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let sealedSegment = header.segmentSize + SealedHeader.tagSize
        // Up to 192 KiB of sealed segments per read from the source, and no more than the range
        // needs: a buffer that size comes from the allocator's arena and is reused call after
        // call, where a larger one is mmapped and page-faulted afresh every time. In parallel,
        // 2 MiB: one buffer per call, enough segments to share out.
        let batchBytes = threads > 1 ? 2 << 20 : 192 << 10
        let batch = Int(
            min(UInt64(max(1, batchBytes / sealedSegment)), segments.upperBound - segments.lowerBound + 1))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: batch * sealedSegment, alignment: 16)
        defer { buffer.deallocate() }

        /// Hands the part of `opened` inside `range` to `sink`.
        func deliver(_ opened: Opened) throws {
            for (i, plain) in opened.plains.enumerated() {
                let base = (opened.first + UInt64(i)) * UInt64(header.segmentSize)
                let lo = Int(max(range.lowerBound, base) - base)
                let hi = Int(min(range.upperBound, base + UInt64(plain.count)) - base)
                try plain.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[lo..<hi])) }
            }
        }

        var ready: Opened?
        var first = segments.lowerBound
        while first <= segments.upperBound {
            let count = min(UInt64(batch), segments.upperBound - first + 1)
            let start = layout.fileOffset(ofSegment: first)
            let end =
                first + count == layout.segmentCount ? layout.fileSize : layout.fileOffset(ofSegment: first + count)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(end - start)])
            try source.read(at: start, into: chunk)
            // The previous batch goes to the sink while this one is authenticated.
            let previous = ready
            let plains = try parallelMap(
                count: Int(count), threads: threads, alongside: previous.map { batch in { try deliver(batch) } }
            ) { [first] i in
                let segment = first + UInt64(i)
                let from = i * sealedSegment
                return try cipher.open(
                    UnsafeRawBufferPointer(rebasing: chunk[from..<min(from + sealedSegment, chunk.count)]),
                    segment: segment, last: segment + 1 == layout.segmentCount)
            }
            ready = Opened(first: first, plains: plains)
            first += count
        }
        if let ready { try deliver(ready) }
    }

    /// A batch of authenticated segments.
    private struct Opened {
        let first: UInt64
        let plains: [Data]
    }

    /// Authenticates every segment of the file without returning plaintext.
    public func verify() throws {
        try read(0..<layout.plaintextSize) { _ in }
    }

    private func readEmpty() throws {
        var sealed = [UInt8](repeating: 0, count: SealedHeader.tagSize)
        try sealed.withUnsafeMutableBytes {
            try source.read(at: UInt64(SealedHeader.size), into: $0)
        }
        _ = try sealed.withUnsafeBytes { try cipher.open($0, segment: 0, last: true) }
    }
}

/// A sealed file held in memory.
public struct InMemorySealedSource: SealedSource {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: UInt64 { UInt64(bytes.count) }
    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard offset + UInt64(buffer.count) <= size else { throw SealedFormatError.headerFailure }
        bytes.withUnsafeBytes {
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count]))
        }
    }
}
