import GRDBSQLite
import Synchronization
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Whether anything committed to the database since last asked, from any connection in this
/// process or another, as a number that moves on every commit.
///
/// In WAL mode, SQLite rewrites the header of the WAL index (the `-shm` file, which every
/// connection maps) at each commit: two copies of a 48-byte header, the second copy written
/// first (sqlite.org/walformat.html). Among its fields is the checksum of the last frame in the
/// WAL, which chains over every frame since the WAL began (and its salts, new each time the WAL
/// restarts), so it changes with every commit. The watcher maps that page read-only and reads the
/// header the way SQLite's readers do — both copies, equal — with no system call and no lock. Without a WAL index (another journal mode, a
/// header mid-rewrite many times over), it asks `PRAGMA data_version` on a connection of its own
/// that never writes, behind a lock (a GRDB queue would cost a dispatch hop each time).
final class DataVersionWatcher: Sendable {
    struct Connection {
        let db: OpaquePointer
        let statement: OpaquePointer
    }

    let path: String
    let connection: Mutex<Connection>
    /// The first page of the `-shm` file, when the database has a WAL index.
    nonisolated(unsafe) let index: UnsafeRawPointer?
    static let indexMapping = 4096
    /// Set in the PRAGMA's answers, so that they never equal a header's (a switch from one to the
    /// other reads as a change).
    static let pragmaBit: Int64 = 1 << 62

    init(path: String) throws {
        self.path = path
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db
        else {
            let detail = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw VaultError.io(path: path, detail: "cannot open the database to watch it: \(detail)")
        }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &statement, nil) == SQLITE_OK, let statement else {
            let detail = String(cString: sqlite3_errmsg(db))
            sqlite3_close(db)
            throw VaultError.io(path: path, detail: "cannot watch the database: \(detail)")
        }
        // A first read, so that the WAL index exists before it is mapped.
        _ = sqlite3_step(statement)
        sqlite3_reset(statement)
        connection = Mutex(Connection(db: db, statement: statement))
        index = Self.mapIndex(path + "-shm")
    }

    static func mapIndex(_ path: String) -> UnsafeRawPointer? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= 136,
            let base = mmap(nil, indexMapping, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED
        else { return nil }
        return UnsafeRawPointer(base)
    }

    /// 62 bits of the WAL index header's last-frame checksum, when both copies agree and the
    /// header is initialised. (Its change counter field does not move on every commit.)
    func indexHeader() -> Int64? {
        guard let index else { return nil }
        var first = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        var second = first
        for _ in 0..<100 {
            withUnsafeMutableBytes(of: &first) { $0.copyMemory(from: UnsafeRawBufferPointer(start: index, count: 48)) }
            atomicMemoryFence(ordering: .acquiring)
            withUnsafeMutableBytes(of: &second) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: index + 48, count: 48))
            }
            atomicMemoryFence(ordering: .acquiring)
            guard first == second else { continue }
            return withUnsafeBytes(of: first) { header -> Int64? in
                // iVersion 3007000, isInit set; aFrameCksum[0] and [1] at bytes 24 and 28.
                guard header.load(fromByteOffset: 0, as: UInt32.self) == 3_007_000, header[12] == 1 else { return nil }
                let low = UInt64(header.load(fromByteOffset: 24, as: UInt32.self))
                let high = UInt64(header.load(fromByteOffset: 28, as: UInt32.self) & 0x3FFF_FFFF)
                return Int64(high << 32 | low)
            }
        }
        return nil
    }

    func current() throws -> Int64 {
        if let header = indexHeader() { return header }
        return try connection.withLock { c in
            defer { sqlite3_reset(c.statement) }
            guard sqlite3_step(c.statement) == SQLITE_ROW else {
                throw VaultError.io(path: path, detail: "database error: \(String(cString: sqlite3_errmsg(c.db)))")
            }
            return Self.pragmaBit | sqlite3_column_int64(c.statement, 0)
        }
    }

    deinit {
        if let index { munmap(UnsafeMutableRawPointer(mutating: index), Self.indexMapping) }
        connection.withLock { c in
            sqlite3_finalize(c.statement)
            sqlite3_close(c.db)
        }
    }
}
