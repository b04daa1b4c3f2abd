import Foundation
import GRDB
import VaultCore

extension SQLiteMetadataStore {
    static func registerDownloadMigration(_ m: inout DatabaseMigrator) {
        // No foreign keys: the record of who got a copy outlives the version, the user and the
        // token it names.
        m.registerMigration("v6-downloads") { db in
            try db.execute(
                sql: """
                    CREATE TABLE downloads (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        at DOUBLE NOT NULL,
                        model TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        path TEXT NOT NULL,
                        file_sha256 TEXT NOT NULL,
                        user TEXT,
                        token_id TEXT,
                        source_ip TEXT,
                        recipient TEXT,
                        range_start INTEGER NOT NULL,
                        range_end INTEGER NOT NULL,
                        sent_sha256 TEXT);
                    CREATE INDEX downloads_by_model ON downloads(model, version);
                    CREATE INDEX downloads_by_file ON downloads(file_sha256, recipient);
                    """)
        }
    }

    public func recordDownload(_ d: DownloadRecord) throws -> Int64 {
        try run {
            try db.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO downloads (at, model, version, path, file_sha256, user, token_id, source_ip,
                            recipient, range_start, range_end, sent_sha256)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        d.at.timeIntervalSince1970, d.model, d.version, d.path, d.fileSHA256, d.user, d.tokenID,
                        d.sourceIP, d.recipient, Int64(d.rangeStart), Int64(d.rangeEnd), d.sentSHA256,
                    ])
                return db.lastInsertedRowID
            }
        }
    }

    public func completeDownload(id: Int64, sentSHA256: String) throws {
        try run {
            try db.write { db in
                try db.execute(sql: "UPDATE downloads SET sent_sha256 = ? WHERE id = ?", arguments: [sentSHA256, id])
                guard db.changesCount == 1 else { throw VaultError.invalidArgument("no download \(id) on record") }
            }
        }
    }

    public func downloads(of model: ModelName?) throws -> [DownloadRecord] {
        try run {
            try db.read { db in
                let rows =
                    if let model {
                        try Row.fetchAll(
                            db, sql: "SELECT * FROM downloads WHERE model = ? ORDER BY id",
                            arguments: [model.description])
                    } else {
                        try Row.fetchAll(db, sql: "SELECT * FROM downloads ORDER BY id")
                    }
                return rows.map { row in
                    DownloadRecord(
                        id: row["id"], at: Date(timeIntervalSince1970: row["at"]), model: row["model"],
                        version: row["version"], path: row["path"], fileSHA256: row["file_sha256"], user: row["user"],
                        tokenID: row["token_id"], sourceIP: row["source_ip"], recipient: row["recipient"],
                        rangeStart: UInt64(row["range_start"] as Int64), rangeEnd: UInt64(row["range_end"] as Int64),
                        sentSHA256: row["sent_sha256"])
                }
            }
        }
    }

    public func sentDigest(fileSHA256: String, recipient: String?) throws -> String? {
        try run {
            try db.read { db in
                try String.fetchOne(
                    db,
                    sql: """
                        SELECT sent_sha256 FROM downloads
                        WHERE file_sha256 = ? AND recipient IS ? AND sent_sha256 IS NOT NULL
                        ORDER BY id DESC LIMIT 1
                        """,
                    arguments: [fileSHA256, recipient])
            }
        }
    }
}
