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

        try downloads(store, llama: llama, bert: bert, file: fileA, now: now)
    }

    /// Downloads: recorded in order, completed with what was sent, found per file and recipient;
    /// the record outlives the version it names.
    static func downloads(_ store: any MetadataStore, llama: ModelName, bert: ModelName, file: FileRecord, now: Date)
        throws
    {
        #expect(try store.downloads(of: nil).isEmpty)
        let alice = DownloadRecord(
            at: now, model: llama.description, version: 2, path: file.path, fileSHA256: file.sha256, user: "alice",
            tokenID: nil, sourceIP: "127.0.0.1", recipient: "user:alice", rangeStart: 0, rangeEnd: file.size)
        var token = alice
        token.tokenID = "tok1"
        token.recipient = "token:tok1"
        token.rangeStart = 4
        var original = alice
        original.model = bert.description
        original.recipient = nil
        let ids = try [alice, token, original].map { try store.recordDownload($0) }
        #expect(Set(ids).count == 3)
        #expect(try store.sentDigest(fileSHA256: file.sha256, recipient: "user:alice") == nil)
        let digest = String(repeating: "c", count: 64)
        try store.completeDownload(id: ids[0], sentSHA256: digest)
        #expect(throws: VaultError.self) { try store.completeDownload(id: 999_999, sentSHA256: digest) }
        #expect(try store.sentDigest(fileSHA256: file.sha256, recipient: "user:alice") == digest)
        #expect(try store.sentDigest(fileSHA256: file.sha256, recipient: "token:tok1") == nil)
        #expect(try store.sentDigest(fileSHA256: file.sha256, recipient: nil) == nil)
        let all = try store.downloads(of: nil)
        #expect(all.map(\.id) == ids)
        var expected = alice
        expected.id = ids[0]
        expected.sentSHA256 = digest
        #expect(all[0] == expected)
        #expect(all[1].tokenID == "tok1" && all[1].rangeStart == 4 && all[1].recipient == "token:tok1")
        #expect(try store.downloads(of: llama).map(\.id) == Array(ids[0..<2]))
        _ = try store.deleteVersion(of: llama, number: 2)
        #expect(try store.downloads(of: llama).count == 2)
    }
}
