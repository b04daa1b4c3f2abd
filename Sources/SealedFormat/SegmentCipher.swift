import Crypto
import Foundation

/// The per-file keys derived from a data key, and the STREAM nonce construction.
///
/// payload key = HKDF-SHA256(data key, salt: empty, info: "MVLT v1 payload"),
/// MAC key = HKDF-SHA256(data key, salt: empty, info: "MVLT v1 header"),
/// nonce(i) = nonce prefix (7 bytes) ‖ i as big-endian UInt32 ‖ 0x01 if last segment else 0x00.
struct SegmentCipher {
    let payloadKey: SymmetricKey
    let macKey: SymmetricKey
    let noncePrefix: [UInt8]

    init(dataKey: [UInt8], noncePrefix: [UInt8]) {
        let ikm = SymmetricKey(data: dataKey)
        payloadKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: ikm, info: Array("MVLT v1 payload".utf8), outputByteCount: 32)
        macKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: ikm, info: Array("MVLT v1 header".utf8), outputByteCount: 32)
        self.noncePrefix = noncePrefix
    }

    func nonce(segment: UInt64, last: Bool) -> AES.GCM.Nonce {
        var bytes = noncePrefix
        bytes += SealedHeader.bigEndian(UInt32(segment))
        bytes.append(last ? 1 : 0)
        // 12 bytes by construction.
        return try! AES.GCM.Nonce(data: bytes)
    }

    func mac(_ authenticated: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: authenticated, using: macKey))
    }

    func isValidMAC(_ mac: [UInt8], for authenticated: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: authenticated, using: macKey)
    }

    /// Seals one segment and passes ciphertext ‖ tag to `sink` as one contiguous piece.
    func seal(
        _ plaintext: UnsafeRawBufferPointer, segment: UInt64, last: Bool,
        to sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try Self.emit(
            AES.GCM.seal(plaintext, using: payloadKey, nonce: nonce(segment: segment, last: last)), to: sink)
    }

    /// Passes a sealed segment (ciphertext ‖ tag) to `sink` as one contiguous piece: `combined`
    /// is nonce ‖ ciphertext ‖ tag in one buffer, so it skips the 12-byte nonce.
    static func emit(_ box: AES.GCM.SealedBox, to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try box.combined!.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[12...])) }
    }

    /// Seals consecutive whole segments of `plaintext` (none of them the file's last), numbered
    /// from `first`, spread over up to `threads` threads; returns each one's box in order.
    func seal(
        segmentsOf plaintext: UnsafeRawBufferPointer, segmentSize: Int, first: UInt64, threads: Int
    ) throws -> [AES.GCM.SealedBox] {
        let count = plaintext.count / segmentSize
        return try parallelMap(count: count, threads: threads) { i in
            let segment = UnsafeRawBufferPointer(rebasing: plaintext[i * segmentSize..<(i + 1) * segmentSize])
            return try AES.GCM.seal(
                segment, using: payloadKey, nonce: nonce(segment: first + UInt64(i), last: false))
        }
    }

    /// Opens one segment (`sealed` = ciphertext ‖ tag).
    /// - Throws: `SealedFormatError.payloadFailure(segment:)`.
    func open(_ sealed: UnsafeRawBufferPointer, segment: UInt64, last: Bool) throws(SealedFormatError)
        -> Data
    {
        let split = sealed.count - SealedHeader.tagSize
        do {
            let box = try AES.GCM.SealedBox(
                nonce: nonce(segment: segment, last: last),
                ciphertext: UnsafeRawBufferPointer(rebasing: sealed[0..<split]),
                tag: UnsafeRawBufferPointer(rebasing: sealed[split...]))
            return try AES.GCM.open(box, using: payloadKey)
        } catch {
            throw .payloadFailure(segment: segment)
        }
    }
}

/// `body(0..<count)` on up to `threads` threads (each takes a contiguous run of indices), results
/// in index order, with `alongside` (when given) run at the same time as one more job: while the
/// jobs of `body` find a thread free, they share out `alongside`'s too. Rethrows the error of
/// `alongside` first, then that of the lowest failing index.
func parallelMap<T>(
    count: Int, threads: Int, alongside: (() throws -> Void)? = nil, _ body: (Int) throws -> T
) throws -> [T] {
    let workers = max(1, min(threads, count))
    if workers == 1 && alongside == nil || threads == 1 {
        try alongside?()
        return try (0..<count).map(body)
    }
    var results = [Result<T, any Error>?](repeating: nil, count: count)
    var side: Result<Void, any Error> = .success(())
    results.withUnsafeMutableBufferPointer { buffer in
        // Each job writes only its own indices (or `side`), and concurrentPerform returns after
        // all of them finish.
        nonisolated(unsafe) let out = buffer
        nonisolated(unsafe) let (body, alongside) = (body, alongside)
        nonisolated(unsafe) var sideResult = side
        let first = alongside == nil ? 0 : 1
        DispatchQueue.concurrentPerform(iterations: first + workers) { job in
            guard job >= first else {
                sideResult = Result { try alongside!() }
                return
            }
            let worker = job - first
            for i in count * worker / workers..<count * (worker + 1) / workers {
                out[i] = Result { try body(i) }
            }
        }
        side = sideResult
    }
    try side.get()
    return try results.map { try $0!.get() }
}
