import GRDBSQLite
import Synchronization
import VaultCore

/// `PRAGMA data_version` on a SQLite connection of its own that never writes, so the answer moves
/// on every commit by any other connection, in this process or another. Asked on every request,
/// so it is a bare connection behind a lock rather than a GRDB queue (a dispatch hop each time).
final class DataVersionWatcher: Sendable {
    struct Connection {
        let db: OpaquePointer
        let statement: OpaquePointer
    }

    let path: String
    let connection: Mutex<Connection>

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
        connection = Mutex(Connection(db: db, statement: statement))
    }

    func current() throws -> Int64 {
        try connection.withLock { c in
            defer { sqlite3_reset(c.statement) }
            guard sqlite3_step(c.statement) == SQLITE_ROW else {
                throw VaultError.io(path: path, detail: "database error: \(String(cString: sqlite3_errmsg(c.db)))")
            }
            return sqlite3_column_int64(c.statement, 0)
        }
    }

    deinit {
        connection.withLock { c in
            sqlite3_finalize(c.statement)
            sqlite3_close(c.db)
        }
    }
}
