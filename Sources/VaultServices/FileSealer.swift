import Crypto
import Foundation
import Keyring
import SealedFormat
import Storage
import VaultCore

/// Seals one file as its bytes arrive — from disk for a local push, from the network for an
/// upload — into a staged blob, hashing the plaintext on the way. Nothing is visible until
/// `LocalVault.commit(_:to:note:)` records it in a version.
///
/// Not thread-safe: one task feeds it at a time.
public final class FileSealer: @unchecked Sendable {
    public let name: String
    let keys: any VaultKeys
    let writer: any BlobWriter
    var sealer: SealedFileWriter
    var hasher = SHA256()
    let threads: Int
    public private(set) var size: UInt64 = 0
    var finished = false

    init(name: String, keys: any VaultKeys, blobs: any BlobStore, threads: Int) throws {
        try ModelFilePath.validateNew(name)
        try keys.requireUnsealed()
        self.name = name
        self.keys = keys
        self.threads = threads
        writer = try blobs.makeWriter()
        do {
            sealer = try SealedFileWriter(keys: keys)
            try sealer.header.encoded.withUnsafeBytes { try writer.write($0) }
        } catch {
            writer.abort()
            throw error
        }
    }

    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished)
        if threads > 1 && bytes.count >= 1 << 20 {
            // SHA-256 is the slower half: it runs on one thread while the others seal.
            // The two jobs touch different fields, and concurrentPerform returns after both.
            nonisolated(unsafe) let bytes = bytes
            nonisolated(unsafe) var failure: (any Error)?
            DispatchQueue.concurrentPerform(iterations: 2) { job in
                if job == 0 {
                    self.hasher.update(bufferPointer: bytes)
                } else {
                    do {
                        try self.sealer.append(bytes, threads: self.threads - 1) { try self.writer.write($0) }
                    } catch { failure = error }
                }
            }
            if let failure { throw failure }
        } else {
            hasher.update(bufferPointer: bytes)
            try sealer.append(bytes) { try writer.write($0) }
        }
        size += UInt64(bytes.count)
    }

    /// Seals the last segment and computes the file's content address.
    public func finish() throws -> StagedFile {
        precondition(!finished)
        finished = true
        try sealer.finish { try writer.write($0) }
        let digest = Array(hasher.finalize())
        let address = try keys.blobAddress(forSHA256: digest)
        return StagedFile(
            record: FileRecord(path: name, size: size, sha256: Hex.encode(digest), blobID: address), writer: writer)
    }

    /// Discards the staged bytes.
    public func abort() {
        finished = true
        writer.abort()
    }
}

/// A sealed file waiting for its version to be committed. Dropping it discards its bytes.
public final class StagedFile: @unchecked Sendable {
    public let record: FileRecord
    let writer: any BlobWriter

    init(record: FileRecord, writer: any BlobWriter) {
        self.record = record
        self.writer = writer
    }

    public func abort() { writer.abort() }
}

extension LocalVault {
    /// Starts sealing a file named `name` (a relative path inside the version). With `threads`
    /// > 1, large appends hash and seal at once on that many threads (for a local push; a server
    /// sealing many uploads keeps one thread per upload).
    public func makeSealer(name: String, threads: Int = 1) throws -> FileSealer {
        try FileSealer(name: name, keys: keys, blobs: blobs, threads: threads)
    }

    /// Records `files` as a new version of `model`: each staged blob is committed under its
    /// address (or dropped when an identical blob is already stored), then the version appears
    /// with all of them at once.
    public func commit(_ files: [StagedFile], to model: ModelName, note: String?) throws -> VersionRecord {
        guard !files.isEmpty else { throw VaultError.invalidArgument("a version needs at least one file") }
        var seen = Set<String>()
        for file in files where !seen.insert(file.record.path).inserted {
            throw VaultError.duplicateFileName(file.record.path)
        }
        try ModelFilePath.validateSet(files.map(\.record.path))
        try keys.requireUnsealed()
        return try withWriteLock {
            try collectGarbage()
            for file in files {
                if try blobs.exists(file.record.blobID) {
                    file.writer.abort()
                } else {
                    try file.writer.commit(as: file.record.blobID)
                }
            }
            return try metadata.addVersion(model: model, note: note, files: files.map(\.record), createdAt: Date())
        }
    }
}
