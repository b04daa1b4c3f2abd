import Foundation
import Storage
import Testing
import VaultCore

/// The behaviour every `BlobStore` must show. A backend's own test is one call:
/// `try BlobStoreConformance.run { try MyStore(...) }`.
public enum BlobStoreConformance {
    public static func run(makeStore: () throws -> any BlobStore) throws {
        let store = try makeStore()
        let id = String(repeating: "ab", count: 32)
        let other = String(repeating: "cd", count: 32)
        #expect(try store.list().isEmpty)
        #expect(try !store.exists(id))

        // Nothing is visible before commit; abort leaves nothing.
        let aborted = try store.makeWriter()
        try write(aborted, bytes: [1, 2, 3])
        aborted.abort()
        #expect(try store.list().isEmpty)

        // Commit makes the bytes readable, at any offset.
        let payload = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let writer = try store.makeWriter()
        for start in stride(from: 0, to: payload.count, by: 700_001) {
            try write(writer, bytes: Array(payload[start..<min(start + 700_001, payload.count)]))
        }
        #expect(try !store.exists(id))
        try writer.commit(as: id)
        #expect(try store.exists(id))
        #expect(try store.list() == [id])
        let reader = try store.open(id)
        #expect(reader.size == UInt64(payload.count))
        #expect(try read(reader, at: 0, count: 10) == Array(payload[0..<10]))
        #expect(try read(reader, at: 2_999_990, count: 10) == Array(payload[2_999_990..<3_000_000]))
        #expect(throws: VaultError.self) { try read(reader, at: 2_999_995, count: 10) }

        // Commit under an existing id replaces it whole.
        let replacement = try store.makeWriter()
        try write(replacement, bytes: [9, 9])
        try replacement.commit(as: id)
        #expect(try read(try store.open(id), at: 0, count: 2) == [9, 9])
        #expect(try store.open(id).size == 2)

        // Second blob, listing order, deletion (idempotent).
        let second = try store.makeWriter()
        try write(second, bytes: [])
        try second.commit(as: other)
        #expect(try store.list() == [id, other].sorted())
        try store.delete(id)
        try store.delete(id)
        #expect(try store.list() == [other])
        #expect(throws: VaultError.self) { _ = try store.open(id) }

        // Ids that are not 64 hex digits never reach the backend.
        for bad in [
            "../../etc/passwd", "", "AB" + String(repeating: "0", count: 62), String(repeating: "a", count: 65),
        ] {
            #expect(throws: VaultError.self) { try store.makeWriter().commit(as: bad) }
            #expect(throws: VaultError.self) { _ = try store.open(bad) }
        }
    }

    static func write(_ writer: any BlobWriter, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writer.write($0) }
    }

    static func read(_ reader: any BlobReader, at offset: UInt64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try reader.read(at: offset, into: $0) }
        return out
    }
}
