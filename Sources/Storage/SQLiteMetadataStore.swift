import Foundation
import GRDB
import VaultCore

/// The embedded default `MetadataStore`: one SQLite file, via GRDB, in WAL mode. A pool of
/// connections lets reads run in parallel with each other and with the one writer.
public final class SQLiteMetadataStore: MetadataStore, ChangeTracking {
    let db: DatabasePool
    let watcher: DataVersionWatcher

    /// Opens or creates the database at `path` and migrates it to the current schema.
    public init(path: String) throws {
        do {
            var config = Configuration()
            config.foreignKeysEnabled = true
            config.busyMode = .timeout(10)
            db = try DatabasePool(path: path, configuration: config)
            try Self.migrator.migrate(db)
            watcher = try DataVersionWatcher(path: path)
        } catch {
            throw Self.mapped(error, path: path)
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE models (
                        id INTEGER PRIMARY KEY,
                        namespace TEXT NOT NULL,
                        name TEXT NOT NULL,
                        next_version INTEGER NOT NULL DEFAULT 1,
                        created_at DOUBLE NOT NULL,
                        UNIQUE (namespace, name));
                    CREATE TABLE versions (
                        id INTEGER PRIMARY KEY,
                        model_id INTEGER NOT NULL REFERENCES models(id),
                        number INTEGER NOT NULL,
                        note TEXT,
                        created_at DOUBLE NOT NULL,
                        UNIQUE (model_id, number));
                    CREATE TABLE files (
                        version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
                        path TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        blob_id TEXT NOT NULL,
                        PRIMARY KEY (version_id, path));
                    CREATE INDEX files_by_blob ON files(blob_id);
                    """)
        }
        registerIdentityMigration(&m)
        registerAccessMigration(&m)
        registerCertificateMigration(&m)
        registerDownloadMigration(&m)
        registerTokenNetworkMigration(&m)
        return m
    }

    public func addVersion(model: ModelName, note: String?, files: [FileRecord], createdAt: Date) throws
        -> VersionRecord
    {
        try run {
            try db.write { db in
                let now = createdAt.timeIntervalSince1970
                try db.execute(
                    sql: "INSERT OR IGNORE INTO models (namespace, name, created_at) VALUES (?, ?, ?)",
                    arguments: [model.namespace, model.name, now])
                let row = try Row.fetchOne(
                    try db.cachedStatement(sql: "SELECT id, next_version FROM models WHERE namespace = ? AND name = ?"),
                    arguments: [model.namespace, model.name])!
                let modelID: Int64 = row["id"]
                let number: Int = row["next_version"]
                try db.execute(
                    sql: "UPDATE models SET next_version = ? WHERE id = ?", arguments: [number + 1, modelID])
                try db.execute(
                    sql: "INSERT INTO versions (model_id, number, note, created_at) VALUES (?, ?, ?, ?)",
                    arguments: [modelID, number, note, now])
                let versionID = db.lastInsertedRowID
                for file in files {
                    try db.execute(
                        sql: "INSERT INTO files (version_id, path, size, sha256, blob_id) VALUES (?, ?, ?, ?, ?)",
                        arguments: [versionID, file.path, Int64(file.size), file.sha256, file.blobID])
                }
                return VersionRecord(
                    model: model.description, number: number, note: note,
                    createdAt: Date(timeIntervalSince1970: now), files: files.sorted { $0.path < $1.path })
            }
        }
    }

    public func models(namespace: String?) throws -> [ModelSummary] {
        try run {
            try db.read { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT m.namespace, m.name, COUNT(v.id) AS n, MAX(v.number) AS latest,
                               MAX(v.created_at) AS updated
                        FROM models m LEFT JOIN versions v ON v.model_id = m.id
                        WHERE (? IS NULL OR m.namespace = ?)
                        GROUP BY m.id ORDER BY m.namespace, m.name
                        """, arguments: [namespace, namespace])
                return rows.map { row in
                    let updated: Double? = row["updated"]
                    return ModelSummary(
                        name: "\(row["namespace"] as String)/\(row["name"] as String)", versionCount: row["n"],
                        latestVersion: row["latest"],
                        updatedAt: updated.map { Date(timeIntervalSince1970: $0) })
                }
            }
        }
    }

    public func versions(of model: ModelName) throws -> [VersionRecord] {
        try run {
            try db.read { db in
                let modelID = try Self.modelID(db, model)
                let rows = try Row.fetchAll(
                    try db.cachedStatement(
                        sql: "SELECT id, number, note, created_at FROM versions WHERE model_id = ? ORDER BY number"),
                    arguments: [modelID])
                return try rows.map { try Self.record(db, row: $0, model: model) }
            }
        }
    }

    public func version(of model: ModelName, number: Int?) throws -> VersionRecord {
        try run {
            try db.read { db in
                let modelID = try Self.modelID(db, model)
                let row: Row?
                if let number {
                    row = try Row.fetchOne(
                        try db.cachedStatement(
                            sql: "SELECT id, number, note, created_at FROM versions WHERE model_id = ? AND number = ?"),
                        arguments: [modelID, number])
                    guard row != nil else { throw VaultError.unknownVersion(model.description, number) }
                } else {
                    row = try Row.fetchOne(
                        db,
                        sql:
                            "SELECT id, number, note, created_at FROM versions WHERE model_id = ? ORDER BY number DESC LIMIT 1",
                        arguments: [modelID])
                    guard row != nil else { throw VaultError.noVersions(model.description) }
                }
                return try Self.record(db, row: row!, model: model)
            }
        }
    }

    public func deleteVersion(of model: ModelName, number: Int) throws -> VersionRecord {
        try run {
            try db.write { db in
                let modelID = try Self.modelID(db, model)
                guard
                    let row = try Row.fetchOne(
                        try db.cachedStatement(
                            sql: "SELECT id, number, note, created_at FROM versions WHERE model_id = ? AND number = ?"),
                        arguments: [modelID, number])
                else { throw VaultError.unknownVersion(model.description, number) }
                let record = try Self.record(db, row: row, model: model)
                try db.execute(sql: "DELETE FROM versions WHERE id = ?", arguments: [row["id"] as Int64])
                return record
            }
        }
    }

    /// A consistent copy of the whole database at `path` (a new file), taken with SQLite's online
    /// backup API while others go on reading and writing. Returns the blobs the copy refers to.
    public func backup(to path: String) throws -> Set<String> {
        try run {
            let copy = try DatabaseQueue(path: path)
            try db.backup(to: copy)
            let ids = try copy.read { Set(try String.fetchAll($0, sql: "SELECT DISTINCT blob_id FROM files")) }
            try copy.close()
            return ids
        }
    }

    public func referencedBlobIDs() throws -> Set<String> {
        try run {
            try db.read { Set(try String.fetchAll(try $0.cachedStatement(sql: "SELECT DISTINCT blob_id FROM files"))) }
        }
    }

    static func modelID(_ db: Database, _ model: ModelName) throws -> Int64 {
        guard
            let id = try Int64.fetchOne(
                try db.cachedStatement(sql: "SELECT id FROM models WHERE namespace = ? AND name = ?"),
                arguments: [model.namespace, model.name])
        else { throw VaultError.unknownModel(model.description) }
        return id
    }

    static func record(_ db: Database, row: Row, model: ModelName) throws -> VersionRecord {
        let files = try Row.fetchAll(
            try db.cachedStatement(
                sql: "SELECT path, size, sha256, blob_id FROM files WHERE version_id = ? ORDER BY path"),
            arguments: [row["id"] as Int64]
        ).map {
            FileRecord(
                path: $0["path"], size: UInt64($0["size"] as Int64), sha256: $0["sha256"], blobID: $0["blob_id"])
        }
        return VersionRecord(
            model: model.description, number: row["number"], note: row["note"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), files: files)
    }

    public func changeCount() throws -> Int64 {
        try watcher.current()
    }

    func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw Self.mapped(error, path: db.path) }
    }

    static func mapped(_ error: any Error, path: String) -> any Error {
        if error is VaultError { return error }
        if let dbError = error as? DatabaseError {
            if dbError.resultCode == .SQLITE_FULL { return VaultError.noSpace(path: path) }
            return VaultError.io(path: path, detail: "database error: \(dbError.message ?? "\(dbError.resultCode)")")
        }
        return VaultError.io(path: path, detail: "\(error)")
    }
}
