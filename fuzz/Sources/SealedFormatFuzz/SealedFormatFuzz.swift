import FuzzDriver
import SealedFormat

/// libFuzzer entry point for the MVLT v1 header and segment parser.
///
/// The first input byte picks what the rest is:
/// - even: a whole sealed file (header parse, key unwrap, MAC, layout);
/// - odd: a payload appended to a valid, authentic header, so the fuzzer reaches the segment
///   layout and AEAD paths. Bytes 1…4 also choose a random-access range.
/// Invariants checked: a parsed header re-encodes to the bytes it came from; an opened file reads
/// whole and in any sub-range to the same bytes; reading on several threads gives the same bytes,
/// or fails at the same segment, as reading on one.
let kek = KeyEncryptionKey(
    keyringID: [UInt8](repeating: 1, count: 16), version: 1, keyBytes: [UInt8](repeating: 2, count: 32))

let validHeader: [UInt8] = {
    var writer = try! SealedFileWriter(
        dataKey: [UInt8](repeating: 3, count: 32), noncePrefix: [UInt8](repeating: 4, count: 7), segmentSize: 16,
        wrap: { try kek.wrap(dataKey: $0, headerPrefix: $1, nonce: [UInt8](repeating: 5, count: 12)) })
    return writer.header.encoded
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = input.first else { return 0 }
    let rest = Array(input.dropFirst())

    if let header = try? SealedHeader.parse(rest) {
        precondition(header.encoded == Array(rest.prefix(SealedHeader.size)), "header does not round-trip")
        precondition((try? SealedHeader.parse(header.encoded)) == header)
        _ = try? SegmentLayout(segmentSize: header.segmentSize, fileSize: UInt64(rest.count))
    }

    let file = mode & 1 == 0 ? rest : validHeader + rest
    guard let reader = try? SealedFileReader(source: InMemorySealedSource(file), keys: kek) else { return 0 }
    func readAll(threads: Int) -> Result<[UInt8], SealedFormatError> {
        var out: [UInt8] = []
        do {
            try reader.read(0..<reader.plaintextSize, threads: threads) { out += $0 }
            return .success(out)
        } catch let error as SealedFormatError {
            return .failure(error)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }
    let outcome = readAll(threads: 1)
    precondition(readAll(threads: 3) == outcome, "reading on three threads differs from reading on one")
    guard case .success(let whole) = outcome else { return 0 }
    precondition(UInt64(whole.count) == reader.plaintextSize)
    if rest.count >= 4, reader.plaintextSize > 0 {
        let a = UInt64(rest[0]) << 8 | UInt64(rest[1])
        let b = UInt64(rest[2]) << 8 | UInt64(rest[3])
        let lo = min(a, b) % (reader.plaintextSize + 1)
        let hi = min(max(a, b), reader.plaintextSize)
        if lo <= hi {
            var part: [UInt8] = []
            try! reader.read(lo..<hi) { part += $0 }
            precondition(part == Array(whole[Int(lo)..<Int(hi)]), "range read differs from whole read")
        }
    }
    return 0
}

/// SwiftPM links an executable target's entry point as `SealedFormatFuzz_main`; hand control to libFuzzer.
@_cdecl("SealedFormatFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    runLibFuzzer(argc, argv) { fuzzOne($0, $1) }
}
