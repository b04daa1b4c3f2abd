import Storage
import VaultCore

/// Wraps a `BlobStore` and fails with `VaultError.noSpace` once `budget` bytes have been written
/// through it, as a full disk would. For testing that failures change nothing.
public final class FailingBlobStore: BlobStore, @unchecked Sendable {
    let inner: any BlobStore
    var remaining: Int

    public init(_ inner: any BlobStore, failAfterBytes budget: Int) {
        self.inner = inner
        self.remaining = budget
    }

    public func makeWriter() throws -> any BlobWriter { Writer(inner: try inner.makeWriter(), store: self) }
    public func open(_ id: String) throws -> any BlobReader { try inner.open(id) }
    public func exists(_ id: String) throws -> Bool { try inner.exists(id) }
    public func delete(_ id: String) throws { try inner.delete(id) }
    public func list() throws -> [String] { try inner.list() }
    public func removeAbandonedStaging() { inner.removeAbandonedStaging() }

    final class Writer: BlobWriter {
        let inner: any BlobWriter
        let store: FailingBlobStore
        init(inner: any BlobWriter, store: FailingBlobStore) {
            self.inner = inner
            self.store = store
        }
        func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard store.remaining >= bytes.count else { throw VaultError.noSpace(path: "blob store") }
            store.remaining -= bytes.count
            try inner.write(bytes)
        }
        func commit(as id: String) throws { try inner.commit(as: id) }
        func abort() { inner.abort() }
    }
}
