import Foundation
import StorageTesting
import Testing
import VaultCore

@testable import Storage

@Suite("Cached store")
struct CachedStoreTests {
    func withStorePath(_ body: (String) throws -> Void) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try body(dir.appendingPathComponent("m.sqlite").path)
    }

    @Test("behaves as the store it caches")
    func conformance() throws {
        try withStorePath { path in
            try MetadataStoreConformance.run { CachedStore(try SQLiteMetadataStore(path: path + ".m")) }
            try IdentityStoreConformance.run { CachedStore(try SQLiteMetadataStore(path: path + ".i")) }
            try AccessStoreConformance.run { CachedStore(try SQLiteMetadataStore(path: path + ".a")) }
        }
    }

    @Test("answers from memory until another connection commits, then reads the change")
    func invalidation() throws {
        try withStorePath { path in
            let now = Date()
            let cached = CachedStore(try SQLiteMetadataStore(path: path))
            // A second store on the same file stands for another process (a local `mvault`).
            let other = try SQLiteMetadataStore(path: path)
            try other.createUser(UserRecord(name: "bob", passwordHash: "h", roles: ["consumer"], createdAt: now))
            try other.createToken(
                TokenRecord(
                    id: "t1", name: "ci", owner: "bob", secretHash: "k", scopes: [],
                    expiresAt: now.addingTimeInterval(3600), createdAt: now))

            // Nothing is in memory yet: answering without waiting is refused, then the store fills it.
            #expect(try cached.withoutWaiting { try cached.token(id: "t1") } == nil)
            #expect(try cached.token(id: "t1")?.revokedAt == nil)
            #expect(try cached.user(named: "bob")?.roles == ["consumer"])
            #expect(try cached.withoutWaiting { try cached.token(id: "t1")?.id } == "t1")
            #expect(try cached.withoutWaiting { try cached.user(named: "bob")?.name } == "bob")
            // Unknown ids are remembered as unknown too.
            #expect(try cached.token(id: "nope") == nil)
            #expect(try cached.withoutWaiting { try cached.token(id: "nope")?.id } == .some(nil))

            // A revocation committed elsewhere is seen by the very next lookup.
            try other.revokeToken(id: "t1", at: now)
            #expect(try cached.withoutWaiting { try cached.token(id: "t1") } == nil)
            #expect(try cached.token(id: "t1")?.revokedAt != nil)
            try other.updateUser(UserRecord(name: "bob", passwordHash: "h", roles: [], createdAt: now))
            #expect(try cached.user(named: "bob")?.roles == [])

            // Writes through the cache are seen by its own reads, and never run without waiting.
            #expect(try cached.withoutWaiting { try cached.deleteUser(named: "bob") } == nil)
            #expect(try cached.user(named: "bob") != nil)
            try cached.deleteUser(named: "bob")
            #expect(try cached.user(named: "bob") == nil)
        }
    }

    /// Runs `statements` on the database at `path` and commits, from Python's sqlite3 module:
    /// another process, another SQLite library.
    func commitFromPython(_ path: String, _ statements: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [
            "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \(statements); c.commit()", path,
        ]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test("a commit by another process moves the change count, read from the WAL index header")
    func changeCountAcrossProcesses() throws {
        try withStorePath { path in
            let store = try SQLiteMetadataStore(path: path)
            let before = try store.changeCount()
            #expect(
                before & DataVersionWatcher.pragmaBit == 0,
                "the count comes from the WAL index, not PRAGMA data_version")
            #expect(try store.changeCount() == before)
            var seen = Set([before])
            for round in 0..<3 {
                try commitFromPython(
                    path, "c.execute('create table if not exists probe(x)'); c.execute('insert into probe values (1)')")
                let after = try store.changeCount()
                #expect(seen.insert(after).inserted, "round \(round): the count moved")
                #expect(try store.changeCount() == after)
            }
        }
    }

    @Test("without a WAL index the count comes from PRAGMA data_version, and still moves")
    func changeCountWithoutWAL() throws {
        try withStorePath { path in
            // A rollback-journal database: no -shm file to map.
            try commitFromPython(path, "c.execute('create table probe(x)')")
            let watcher = try DataVersionWatcher(path: path)
            #expect(watcher.indexHeader() == nil)
            let before = try watcher.current()
            #expect(before & DataVersionWatcher.pragmaBit != 0)
            #expect(try watcher.current() == before)
            try commitFromPython(path, "c.execute('insert into probe values (1)')")
            #expect(try watcher.current() != before)
        }
    }

    @Test("model versions are cached and follow pushes and removals")
    func versions() throws {
        try withStorePath { path in
            let cached = CachedStore(try SQLiteMetadataStore(path: path))
            let other = try SQLiteMetadataStore(path: path)
            let name = try ModelName(parsing: "acme/m")
            _ = try other.addVersion(model: name, note: "one", files: [], createdAt: Date())
            #expect(try cached.versions(of: name).map(\.number) == [1])
            #expect(try cached.withoutWaiting { try cached.version(of: name, number: nil).note } == nil)
            #expect(try cached.version(of: name, number: nil).note == "one")
            #expect(try cached.withoutWaiting { try cached.version(of: name, number: nil).note } == "one")
            _ = try other.addVersion(model: name, note: "two", files: [], createdAt: Date())
            #expect(try cached.versions(of: name).map(\.number) == [1, 2])
            #expect(try cached.version(of: name, number: nil).note == "two")
            _ = try other.deleteVersion(of: name, number: 2)
            #expect(try cached.version(of: name, number: nil).note == "one")
            #expect(throws: VaultError.self) { try cached.version(of: name, number: 2) }
        }
    }

    @Test("last-used stamps are written at most once a minute per grant or token")
    func touches() throws {
        try withStorePath { path in
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let cached = CachedStore(try SQLiteMetadataStore(path: path))
            try cached.createUser(UserRecord(name: "bob", passwordHash: "h", roles: [], createdAt: now))
            try cached.createToken(
                TokenRecord(
                    id: "t1", name: "ci", owner: "bob", secretHash: "k", scopes: [],
                    expiresAt: now.addingTimeInterval(3600), createdAt: now))
            #expect(try cached.withoutWaiting { try cached.touchToken(id: "t1", at: now) } == nil)
            try cached.touchToken(id: "t1", at: now)
            // Within the minute: nothing to write, so it runs from memory.
            #expect(
                try cached.withoutWaiting { try cached.touchToken(id: "t1", at: now.addingTimeInterval(30)) } != nil)
            #expect(try cached.token(id: "t1")?.lastUsedAt == now)
            try cached.touchToken(id: "t1", at: now.addingTimeInterval(61))
            #expect(try cached.token(id: "t1")?.lastUsedAt == now.addingTimeInterval(61))
        }
    }
}
