/// Where sealed blobs live, by content address.
///
/// - Important: a blob store is untrusted. It only ever sees sealed (encrypted, authenticated)
///   bytes, and everything read back goes through `SealedFileReader`, which detects any change.
///
/// Error contract: every method throws `VaultError` — `.noSpace` when the device is full,
/// `.io` for other failures, `.corrupt` for an id that is not a valid address.
public protocol BlobStore: Sendable {
    /// Starts writing a blob whose id is chosen at `commit(as:)` (content addresses are known only
    /// once every byte is seen). Nothing is visible until then; a writer that is abandoned, or
    /// whose process dies, leaves every committed blob untouched.
    func makeWriter() throws -> any BlobWriter
    /// Opens blob `id` for random-access reads.
    func open(_ id: String) throws -> any BlobReader
    func exists(_ id: String) throws -> Bool
    /// Removes blob `id`; removing a missing blob is not an error.
    func delete(_ id: String) throws
    /// Every committed blob id, sorted.
    func list() throws -> [String]
    /// Removes staged bytes of writers that never committed and whose process has ended.
    func removeAbandonedStaging()
}

/// A staged blob being written; see `BlobStore.makeWriter(id:)`.
public protocol BlobWriter: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the blob durable and visible as `id`, replacing any blob with that id atomically.
    func commit(as id: String) throws
    /// Discards the staged bytes.
    func abort()
}

/// A committed blob.
public protocol BlobReader: AnyObject {
    var size: UInt64 { get }
    /// Fills `buffer` with the bytes at `offset`.
    /// - Throws: `VaultError.io` if the blob is shorter than `offset + buffer.count`.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
}

/// Blob ids are 64 lowercase hex digits (an HMAC-SHA256 address).
public enum BlobID {
    public static func isValid(_ id: String) -> Bool {
        id.utf8.count == 64 && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}
