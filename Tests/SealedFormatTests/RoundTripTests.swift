import PropertyBased
import SealedFormat
import Testing

let testKEK = KeyEncryptionKey(
    keyringID: [UInt8](repeating: 7, count: 16), version: 1, keyBytes: [UInt8](repeating: 9, count: 32))

/// Seals `plaintext`, feeding the writer in pieces of `chunk` bytes, sealing on `threads` threads.
func seal(
    _ plaintext: [UInt8], segmentSize: Int, chunk: Int = 1000, kek: KeyEncryptionKey = testKEK, threads: Int = 1
) throws -> [UInt8] {
    var writer = try SealedFileWriter(keys: kek, segmentSize: segmentSize)
    var out = writer.header.encoded
    var i = 0
    while i < plaintext.count {
        let end = min(i + max(chunk, 1), plaintext.count)
        try plaintext[i..<end].withUnsafeBytes { try writer.append($0, threads: threads) { out += $0 } }
        i = end
    }
    try writer.finish { out += $0 }
    return out
}

func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255) } }

@Suite("Seal and open")
struct RoundTripTests {
    static let segment = 64

    @Test(
        "open(seal(x)) == x at the segment edges",
        arguments: [0, 1, segment - 1, segment, segment + 1, 2 * segment, 5 * segment + 3])
    func edges(size: Int) throws {
        let plaintext = randomBytes(size)
        for chunk in [1, 7, Self.segment, 1000] {
            let sealed = try seal(plaintext, segmentSize: Self.segment, chunk: chunk)
            #expect(try openAll(sealed, kek: testKEK).get() == plaintext)
            let layout = try SegmentLayout(segmentSize: Self.segment, plaintextSize: UInt64(size))
            #expect(UInt64(sealed.count) == layout.fileSize)
        }
    }

    @Test("open(seal(x)) == x for random sizes and chunkings")
    func randomSizes() async {
        await propertyCheck(count: 60, input: Gen.int(in: 0...2000), Gen.int(in: 1...300)) { size, chunk in
            let plaintext = randomBytes(size)
            let sealed = try! seal(plaintext, segmentSize: 64, chunk: chunk)
            #expect(try! openAll(sealed, kek: testKEK).get() == plaintext)
        }
    }

    @Test("the default segment size round-trips a multi-segment file")
    func defaultSegment() throws {
        let plaintext = randomBytes(3 * SealedHeader.defaultSegmentSize + 17)
        let sealed = try seal(plaintext, segmentSize: SealedHeader.defaultSegmentSize, chunk: 100_000)
        #expect(try openAll(sealed, kek: testKEK).get() == plaintext)
    }

    @Test("every single-bit flip anywhere in the file is detected", arguments: [0, 1, 64, 150])
    func everyBitFlip(size: Int) throws {
        let sealed = try seal(randomBytes(size), segmentSize: 64)
        for byte in sealed.indices {
            for bit in 0..<8 {
                var tampered = sealed
                tampered[byte] ^= 1 << bit
                guard case .failure = openAll(tampered, kek: testKEK) else {
                    Issue.record("flip of bit \(bit) in byte \(byte) went undetected")
                    return
                }
            }
        }
    }

    @Test("every truncation, and every extension, is detected", arguments: [0, 1, 64, 150])
    func everyTruncation(size: Int) throws {
        let sealed = try seal(randomBytes(size), segmentSize: 64)
        for length in 0..<sealed.count {
            guard case .failure = openAll(Array(sealed[0..<length]), kek: testKEK) else {
                Issue.record("truncation to \(length) bytes went undetected")
                return
            }
        }
        for extra in [1, 16, 80] {
            guard case .failure = openAll(sealed + randomBytes(extra), kek: testKEK) else {
                Issue.record("appending \(extra) bytes went undetected")
                return
            }
        }
    }

    @Test(
        "sealing and opening on several threads gives the same bytes as on one",
        arguments: [0, 1, 63, 64, 65, 640, 64 * 37 + 5])
    func threads(size: Int) throws {
        let plaintext = randomBytes(size)
        for chunk in [1, 64, 200, 100_000] {
            for threads in [2, 3, 8] {
                let sealed = try seal(plaintext, segmentSize: 64, chunk: chunk, threads: threads)
                #expect(try openAll(sealed, kek: testKEK).get() == plaintext)
                #expect(try openAll(sealed, kek: testKEK, threads: threads).get() == plaintext)
                let sequential = try seal(plaintext, segmentSize: 64, chunk: chunk)
                #expect(try openAll(sequential, kek: testKEK, threads: threads).get() == plaintext)
            }
        }
    }

    @Test("opening on several threads names the same first bad segment as on one")
    func threadsFirstFailure() throws {
        let sealed = try seal(randomBytes(64 * 40), segmentSize: 64, chunk: 100_000, threads: 2)
        let stride = 64 + SealedHeader.tagSize
        for bad in [[0], [5], [5, 30], [17, 18, 39], [39]] {
            var tampered = sealed
            for segment in bad { tampered[SealedHeader.size + segment * stride + 3] ^= 0x10 }
            for threads in [1, 2, 3] {
                #expect(
                    openAll(tampered, kek: testKEK, threads: threads)
                        == .failure(.payloadFailure(segment: UInt64(bad[0]))))
            }
        }
    }

    @Test("a file under another KEK fails as a header failure")
    func wrongKEK() throws {
        let sealed = try seal(randomBytes(100), segmentSize: 64)
        let other = KeyEncryptionKey(keyringID: testKEK.keyringID, version: 1, keyBytes: randomBytes(32))
        #expect(throws: SealedFormatError.headerFailure) {
            _ = try SealedFileReader(source: InMemorySealedSource(sealed), keys: other)
        }
    }
}

/// Counts which byte ranges a reader asks for.
final class CountingSource: SealedSource {
    let inner: InMemorySealedSource
    var reads: [Range<UInt64>] = []
    init(_ bytes: [UInt8]) { inner = InMemorySealedSource(bytes) }
    var size: UInt64 { inner.size }
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        reads.append(offset..<offset + UInt64(buffer.count))
        try inner.read(at: offset, into: buffer)
    }
}

@Suite("Random access")
struct RandomAccessTests {
    @Test("any range [a, b) decrypts to the same bytes as the whole file")
    func ranges() async throws {
        let plaintext = randomBytes(1000)
        let sealed = try seal(plaintext, segmentSize: 64)
        let reader = try SealedFileReader(source: InMemorySealedSource(sealed), keys: testKEK)
        await propertyCheck(count: 200, input: Gen.int(in: 0...1000), Gen.int(in: 0...1000)) { a, b in
            let range = UInt64(min(a, b))..<UInt64(max(a, b))
            var out: [UInt8] = []
            try! reader.read(range) { out += $0 }
            #expect(out == Array(plaintext[Int(range.lowerBound)..<Int(range.upperBound)]))
        }
    }

    @Test("reading [a, b) reads only the header and the segments covering it")
    func readsOnlyCoveringSegments() throws {
        let sealed = try seal(randomBytes(1000), segmentSize: 64)
        let source = CountingSource(sealed)
        let reader = try SealedFileReader(source: source, keys: testKEK)
        source.reads.removeAll()
        try reader.read(200..<300) { _ in }
        let full = UInt64(64 + 16)
        let expected = UInt64(SealedHeader.size) + 3 * full..<UInt64(SealedHeader.size) + 5 * full
        #expect(source.reads == [expected])
    }

    @Test("a damaged segment outside the range does not affect the range")
    func damageElsewhere() throws {
        let plaintext = randomBytes(1000)
        var sealed = try seal(plaintext, segmentSize: 64)
        sealed[sealed.count - 5] ^= 1
        let reader = try SealedFileReader(source: InMemorySealedSource(sealed), keys: testKEK)
        var out: [UInt8] = []
        try reader.read(0..<64) { out += $0 }
        #expect(out == Array(plaintext[0..<64]))
        #expect(throws: SealedFormatError.payloadFailure(segment: 15)) { try reader.read(960..<1000) { _ in } }
    }

    @Test("reading past the end is refused")
    func pastEnd() throws {
        let reader = try SealedFileReader(
            source: InMemorySealedSource(try seal(randomBytes(10), segmentSize: 64)), keys: testKEK)
        #expect(throws: SealedFormatError.rangeOutOfBounds) { try reader.read(5..<11) { _ in } }
    }
}

@Suite("Rewrap")
struct RewrapTests {
    @Test("a rewrapped header opens under the new KEK and the payload is untouched")
    func rewrap() throws {
        let plaintext = randomBytes(500)
        let sealed = try seal(plaintext, segmentSize: 64)
        let header = try SealedHeader.parse(sealed)
        let dataKey = try testKEK.unwrap(header.stanza, headerPrefix: header.prefix)
        let newKEK = KeyEncryptionKey(keyringID: testKEK.keyringID, version: 2, keyBytes: randomBytes(32))
        let newHeader = try header.rewrapped(dataKey: dataKey) { try newKEK.wrap(dataKey: dataKey, headerPrefix: $0) }
        let rewrapped = newHeader.encoded + sealed[SealedHeader.size...]
        #expect(try openAll(rewrapped, kek: newKEK).get() == plaintext)
        #expect(throws: SealedFormatError.headerFailure) {
            _ = try SealedFileReader(source: InMemorySealedSource(rewrapped), keys: testKEK)
        }
    }

    @Test("a tampered header is never re-blessed by rewrap")
    func tamperedHeader() throws {
        var sealed = try seal(randomBytes(100), segmentSize: 64)
        sealed[110] ^= 1  // inside the MAC
        let header = try SealedHeader.parse(sealed)
        let dataKey = try testKEK.unwrap(header.stanza, headerPrefix: header.prefix)
        #expect(throws: SealedFormatError.headerFailure) {
            _ = try header.rewrapped(dataKey: dataKey) { try testKEK.wrap(dataKey: dataKey, headerPrefix: $0) }
        }
    }
}
