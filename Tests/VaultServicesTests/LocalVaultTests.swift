import Crypto
import Foundation
import Keyring
import SealedFormat
import Storage
import StorageTesting
import Testing
import VaultCore
import VaultServices

/// A fresh vault in a temporary directory, opened with its keyring held in this process.
struct Fixture {
    let root: URL
    let layout: VaultLayout
    let keyring: Keyring
    let vault: LocalVault

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("mvault-svc-\(UUID().uuidString)")
        let created = try LocalVault.create(
            at: root.appendingPathComponent("vault"), method: .shamir(shares: 3, threshold: 2))
        layout = VaultLayout(root: root.appendingPathComponent("vault"))
        keyring = created.keyring
        vault = try LocalVault(layout: layout, keys: InProcessKeys(keyring: keyring))
    }

    func file(_ name: String, size: Int) throws -> URL {
        let url = root.appendingPathComponent("in/\(name)")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((0..<size).map { _ in UInt8.random(in: 0...255) }).write(to: url)
        return url
    }

    func out(_ name: String = "out") -> URL { root.appendingPathComponent(name) }

    func blobFiles() throws -> [String] { try DirectoryBlobStore(root: layout.root).list() }

    func cleanup() { try? FileManager.default.removeItem(at: root) }
}

@Suite("Local vault")
struct LocalVaultTests {
    let model = try! ModelName(parsing: "acme/llama")

    @Test("push then pull gives byte-identical files, checked against the recorded SHA-256")
    func roundTrip() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let weights = try f.file("model.safetensors", size: 300_000)
        let config = try f.file("config.json", size: 20)
        let pushed = try f.vault.push([weights, config], to: model, note: "first")
        #expect(pushed.number == 1)
        let pulled = try f.vault.pull(ModelReference(model: model, version: nil), to: f.out(), force: false)
        #expect(pulled.version == pushed)
        #expect(pulled.files.map(\.sha256) == pushed.files.map(\.sha256))
        #expect(pulled.files.allSatisfy { !$0.fingerprinted })
        for name in ["model.safetensors", "config.json"] {
            let original = try Data(contentsOf: f.root.appendingPathComponent("in/\(name)"))
            let copy = try Data(contentsOf: f.out().appendingPathComponent(name))
            #expect(copy == original)
            let record = try #require(pushed.files.first { $0.path == name })
            #expect(record.sha256 == SHA256.hash(data: original).map { String(format: "%02x", $0) }.joined())
        }
        // Stored blobs hold no plaintext.
        let blob = try Data(
            contentsOf: f.layout.root.appendingPathComponent(
                "blobs/\(pushed.files[0].blobID.prefix(2))/\(pushed.files[0].blobID)"))
        #expect(blob.prefix(4) == Data("MVLT".utf8))
        let plain = try Data(contentsOf: config)
        #expect(blob.range(of: plain) == nil)
    }

    @Test("a directory is pushed with relative names, and identical files share one blob")
    func directoryAndDedup() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        _ = try f.file("tree/a.bin", size: 1000)
        _ = try f.file("tree/sub/b.bin", size: 10)
        let v1 = try f.vault.push([f.root.appendingPathComponent("in/tree")], to: model, note: nil)
        #expect(v1.files.map(\.path) == ["a.bin", "sub/b.bin"])
        let v2 = try f.vault.push([f.root.appendingPathComponent("in/tree")], to: model, note: nil)
        #expect(v2.number == 2)
        #expect(try f.blobFiles().count == 2)
        _ = try f.vault.pull(ModelReference(model: model, version: 1), to: f.out(), force: false)
        #expect(FileManager.default.fileExists(atPath: f.out().appendingPathComponent("sub/b.bin").path))
    }

    @Test("bad input is refused with a clear error and nothing changes")
    func badInput() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let good = try f.file("a.bin", size: 10)
        let missing = f.root.appendingPathComponent("nope.bin")
        #expect(throws: VaultError.inputMissing(path: missing.path)) {
            try f.vault.push([good, missing], to: model, note: nil)
        }
        #expect(throws: VaultError.inputNotAFile(path: "/dev/null")) {
            try f.vault.push([URL(fileURLWithPath: "/dev/null")], to: model, note: nil)
        }
        let dup = try f.file("x/a.bin", size: 5)
        #expect(throws: VaultError.duplicateFileName("a.bin")) { try f.vault.push([good, dup], to: model, note: nil) }
        #expect(try f.vault.list(namespace: nil).isEmpty)
        #expect(try f.blobFiles().isEmpty)
        #expect(throws: VaultError.unknownModel("acme/llama")) {
            try f.vault.pull(ModelReference(model: model, version: nil), to: f.out(), force: false)
        }
        _ = try f.vault.push([good], to: model, note: nil)
        #expect(throws: VaultError.unknownVersion("acme/llama", 9)) {
            try f.vault.pull(ModelReference(model: model, version: 9), to: f.out(), force: false)
        }
        #expect(!FileManager.default.fileExists(atPath: f.out().path))
    }

    @Test("an existing output file is kept unless --force")
    func existingOutput() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        _ = try f.vault.push([try f.file("a.bin", size: 100)], to: model, note: nil)
        try FileManager.default.createDirectory(at: f.out(), withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: f.out().appendingPathComponent("a.bin"))
        #expect(throws: VaultError.outputExists(path: f.out().appendingPathComponent("a.bin").path)) {
            try f.vault.pull(ModelReference(model: model, version: nil), to: f.out(), force: false)
        }
        #expect(try Data(contentsOf: f.out().appendingPathComponent("a.bin")) == Data("keep me".utf8))
        _ = try f.vault.pull(ModelReference(model: model, version: nil), to: f.out(), force: true)
        #expect(try Data(contentsOf: f.out().appendingPathComponent("a.bin")).count == 100)
        // Run again, a pull keeps the file it wrote (the same bytes) instead of refusing.
        let again = try f.vault.pull(ModelReference(model: model, version: nil), to: f.out(), force: false)
        #expect(again.files.map(\.kept) == [true])
    }

    @Test("a full disk during push leaves the previous state intact; the next push succeeds")
    func diskFull() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let first = try f.file("a.bin", size: 50_000)
        _ = try f.vault.push([first], to: model, note: nil)
        let before = try f.blobFiles()
        let failing = try LocalVault(
            layout: f.layout, metadata: f.vault.metadata,
            blobs: FailingBlobStore(DirectoryBlobStore(root: f.layout.root), failAfterBytes: 100_000),
            keys: f.vault.keys)
        let big = try f.file("b.bin", size: 400_000)
        #expect(throws: VaultError.noSpace(path: "blob store")) { try failing.push([big], to: model, note: nil) }
        #expect(try f.vault.versions(of: model).map(\.number) == [1])
        #expect(try f.blobFiles() == before)
        let staged = try FileManager.default.contentsOfDirectory(
            atPath: f.layout.root.appendingPathComponent("tmp").path)
        #expect(staged.isEmpty)
        #expect(try f.vault.push([big], to: model, note: nil).number == 2)
    }

    @Test("a corrupted blob is named with its file and segment, and nothing is written")
    func corruption() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let v = try f.vault.push([try f.file("w.bin", size: 300_000)], to: model, note: nil)
        let blob = f.layout.root.appendingPathComponent("blobs/\(v.files[0].blobID.prefix(2))/\(v.files[0].blobID)")
        var bytes = try Data(contentsOf: blob)
        bytes[SealedHeader.size + 2 * (SealedHeader.defaultSegmentSize + 16) + 5] ^= 0x40
        try bytes.write(to: blob)
        #expect(
            throws: VaultError.corrupt(
                file: "acme/llama@1/w.bin",
                detail: "segment 2 failed authentication (blob \(v.files[0].blobID.prefix(12))…)")
        ) {
            try f.vault.pull(ModelReference(model: model, version: 1), to: f.out(), force: false)
        }
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: f.out().path)) ?? []
        #expect(leftovers.isEmpty)
        let report = try f.vault.verify()
        #expect(report.failures.map(\.file) == ["acme/llama@1/w.bin"])
    }

    @Test("removing a version deletes blobs only it used; its number is never reused")
    func remove() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let shared = try f.file("shared.bin", size: 100)
        _ = try f.vault.push([shared, try f.file("only1.bin", size: 100)], to: model, note: nil)
        _ = try f.vault.push([shared], to: model, note: nil)
        #expect(try f.blobFiles().count == 2)
        _ = try f.vault.remove(model, version: 1)
        #expect(try f.blobFiles().count == 1)
        #expect(try f.vault.push([shared], to: model, note: nil).number == 3)
        _ = try f.vault.pull(ModelReference(model: model, version: 2), to: f.out(), force: false)
    }

    @Test("rotate, rewrap and retire: payloads untouched, retired files reported then rewrapped")
    func keyLifecycle() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let weights = try f.file("w.bin", size: 200_000)
        let v = try f.vault.push([weights], to: model, note: nil)
        // A second version with the same bytes shares the blob: it is listed too.
        _ = try f.vault.push([weights], to: model, note: nil)
        var keyring = f.keyring
        keyring.rotate()
        try keyring.retire(below: 2)
        let vault = try LocalVault(layout: f.layout, keys: InProcessKeys(keyring: keyring))
        #expect(try vault.filesUnderRetiredKeys().map(\.name) == ["acme/llama@1/w.bin", "acme/llama@2/w.bin"])
        #expect(throws: VaultError.retiredKey(file: "acme/llama@1/w.bin", version: 1)) {
            try vault.pull(ModelReference(model: model, version: 1), to: f.out(), force: false)
        }
        // verify says what to do about it: rewrap, not restore.
        let failures = try vault.verify().failures
        #expect(failures.count == 2)
        #expect(failures.allSatisfy { $0.hint == "run `mvault key rewrap` to move it to the newest key version" })
        let blob = f.layout.root.appendingPathComponent("blobs/\(v.files[0].blobID.prefix(2))/\(v.files[0].blobID)")
        let before = try Data(contentsOf: blob)
        #expect(try vault.rewrap() == 1)
        let after = try Data(contentsOf: blob)
        #expect(after[SealedHeader.size...] == before[SealedHeader.size...])
        #expect(after[0..<SealedHeader.size] != before[0..<SealedHeader.size])
        #expect(try vault.filesUnderRetiredKeys().isEmpty)
        #expect(try vault.wrappedFiles().map(\.kekVersion) == [2, 2])
        _ = try vault.pull(ModelReference(model: model, version: 1), to: f.out(), force: false)
        #expect(try vault.rewrap() == 0)
    }

    @Test("a file sealed by another vault is refused")
    func foreignVault() throws {
        let a = try Fixture()
        let b = try Fixture()
        defer {
            a.cleanup()
            b.cleanup()
        }
        let v = try a.vault.push([try a.file("w.bin", size: 1000)], to: model, note: nil)
        _ = try b.vault.push([try b.file("w.bin", size: 1000)], to: model, note: nil)
        let src = a.layout.root.appendingPathComponent("blobs/\(v.files[0].blobID.prefix(2))/\(v.files[0].blobID)")
        let vb = try b.vault.version(ModelReference(model: model, version: 1))
        let dst = b.layout.root.appendingPathComponent("blobs/\(vb.files[0].blobID.prefix(2))/\(vb.files[0].blobID)")
        try FileManager.default.removeItem(at: dst)
        try FileManager.default.copyItem(at: src, to: dst)
        #expect(throws: VaultError.self) {
            try b.vault.pull(ModelReference(model: model, version: 1), to: b.out(), force: false)
        }
    }
}
