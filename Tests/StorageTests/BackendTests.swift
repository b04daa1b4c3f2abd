import Foundation
import Storage
import StorageTesting
import Testing
import VaultCore

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("mvault-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Storage backends")
struct BackendTests {
    @Test func directoryBlobStore() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try BlobStoreConformance.run { try DirectoryBlobStore(root: dir) }
    }

    @Test func sqliteMetadataStore() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try MetadataStoreConformance.run { try SQLiteMetadataStore(path: dir.appendingPathComponent("m.sqlite").path) }
    }

    @Test func sqliteIdentityStore() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try IdentityStoreConformance.run { try SQLiteMetadataStore(path: dir.appendingPathComponent("m.sqlite").path) }
    }

    @Test func sqliteAccessStore() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try AccessStoreConformance.run { try SQLiteMetadataStore(path: dir.appendingPathComponent("m.sqlite").path) }
    }

    @Test("the SQLite store survives reopening")
    func reopen() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.sqlite").path
        let name = try ModelName(parsing: "a/b")
        _ = try SQLiteMetadataStore(path: path).addVersion(model: name, note: "n", files: [], createdAt: Date())
        #expect(try SQLiteMetadataStore(path: path).version(of: name, number: 1).note == "n")
    }
}
