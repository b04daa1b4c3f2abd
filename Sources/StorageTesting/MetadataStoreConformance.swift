import Foundation
import Storage
import Testing
import VaultCore

/// The behaviour every `MetadataStore` must show: `try MetadataStoreConformance.run { … }`.
public enum MetadataStoreConformance {
    public static func run(makeStore: () throws -> any MetadataStore) throws {
        let store = try makeStore()
        let llama = try ModelName(parsing: "acme/llama")
        let bert = try ModelName(parsing: "beta/bert")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let fileA = FileRecord(
            path: "model.safetensors", size: 10, sha256: String(repeating: "1", count: 64),
            blobID: String(repeating: "a", count: 64))
        let fileB = FileRecord(
            path: "config.json", size: 3, sha256: String(repeating: "2", count: 64),
            blobID: String(repeating: "b", count: 64))

        #expect(try store.models(namespace: nil).isEmpty)
        #expect(throws: VaultError.unknownModel("acme/llama")) { try store.versions(of: llama) }
        #expect(throws: VaultError.unknownModel("acme/llama")) { try store.version(of: llama, number: nil) }

        let v1 = try store.addVersion(model: llama, note: "first", files: [fileA, fileB], createdAt: now)
        #expect(v1.number == 1)
        #expect(v1.files.map(\.path) == ["config.json", "model.safetensors"])
        let v2 = try store.addVersion(model: llama, note: nil, files: [fileA], createdAt: now)
        #expect(v2.number == 2)
        _ = try store.addVersion(model: bert, note: nil, files: [fileB], createdAt: now)

        #expect(try store.models(namespace: nil).map(\.name) == ["acme/llama", "beta/bert"])
        #expect(try store.models(namespace: "acme").map(\.name) == ["acme/llama"])
        #expect(try store.models(namespace: "acme").first?.versionCount == 2)
        #expect(try store.models(namespace: "acme").first?.latestVersion == 2)
        #expect(try store.version(of: llama, number: nil).number == 2)
        let fetched = try store.version(of: llama, number: 1)
        #expect(fetched == v1)
        #expect(fetched.createdAt == now)
        #expect(throws: VaultError.unknownVersion("acme/llama", 7)) { try store.version(of: llama, number: 7) }
        #expect(try store.referencedBlobIDs() == [fileA.blobID, fileB.blobID])

        // Removing versions: numbers are never reused, blobs stop being referenced.
        _ = try store.deleteVersion(of: bert, number: 1)
        #expect(throws: VaultError.noVersions("beta/bert")) { try store.version(of: bert, number: nil) }
        #expect(try store.referencedBlobIDs() == [fileA.blobID, fileB.blobID])
        _ = try store.deleteVersion(of: llama, number: 1)
        #expect(try store.referencedBlobIDs() == [fileA.blobID])
        #expect(throws: VaultError.unknownVersion("acme/llama", 1)) { try store.deleteVersion(of: llama, number: 1) }
        #expect(try store.addVersion(model: llama, note: nil, files: [fileA], createdAt: now).number == 3)
        #expect(try store.addVersion(model: bert, note: nil, files: [fileB], createdAt: now).number == 2)

        // A failing transaction leaves nothing behind: duplicate file names violate the key.
        #expect(throws: VaultError.self) {
            try store.addVersion(model: llama, note: nil, files: [fileA, fileA], createdAt: now)
        }
        #expect(try store.versions(of: llama).map(\.number) == [2, 3])
    }
}
