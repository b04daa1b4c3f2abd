import Foundation
import GRDB
import VaultCore

extension SQLiteMetadataStore: IdentityStore {
    static func registerIdentityMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v2-identity") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        name TEXT PRIMARY KEY,
                        password_hash TEXT NOT NULL,
                        roles TEXT NOT NULL,
                        totp_secret TEXT,
                        totp_last_step INTEGER,
                        created_at DOUBLE NOT NULL);
                    CREATE TABLE sessions (
                        id TEXT PRIMARY KEY,
                        secret_hash TEXT NOT NULL,
                        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                        created_at DOUBLE NOT NULL,
                        expires_at DOUBLE NOT NULL);
                    """)
        }
        m.registerMigration("v3-mfa-enrollment") { db in
            try db.execute(
                sql: """
                    ALTER TABLE users ADD COLUMN totp_pending TEXT;
                    ALTER TABLE users ADD COLUMN recovery_codes TEXT NOT NULL DEFAULT '[]';
                    """)
        }
    }

    public func createUser(_ user: UserRecord) throws {
        try run {
            try db.write { db in
                guard
                    try Int.fetchOne(
                        try db.cachedStatement(sql: "SELECT 1 FROM users WHERE name = ?"), arguments: [user.name])
                        == nil
                else { throw VaultError.userExists(user.name) }
                try db.execute(
                    sql: """
                        INSERT INTO users (name, password_hash, roles, totp_secret, totp_last_step, totp_pending,
                                           recovery_codes, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        user.name, user.passwordHash, try Self.encodeList(user.roles), user.sealedTOTPSecret,
                        user.totpLastStep, user.pendingTOTPSecret, try Self.encodeList(user.recoveryCodeHashes),
                        user.createdAt.timeIntervalSince1970,
                    ])
            }
        }
    }

    public func user(named name: String) throws -> UserRecord? {
        try run {
            try db.read { db in
                try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM users WHERE name = ?"), arguments: [name])
                    .map(Self.user)
            }
        }
    }

    public func updateUser(_ user: UserRecord) throws {
        try run {
            try db.write { db in
                try db.execute(
                    sql: """
                        UPDATE users SET password_hash = ?, roles = ?, totp_secret = ?, totp_last_step = ?,
                                         totp_pending = ?, recovery_codes = ?
                        WHERE name = ?
                        """,
                    arguments: [
                        user.passwordHash, try Self.encodeList(user.roles), user.sealedTOTPSecret, user.totpLastStep,
                        user.pendingTOTPSecret, try Self.encodeList(user.recoveryCodeHashes), user.name,
                    ])
                guard db.changesCount == 1 else { throw VaultError.unknownUser(user.name) }
            }
        }
    }

    public func setPasswordHash(user: String, hash: String) throws {
        try run {
            try db.write { db in
                try db.execute(sql: "UPDATE users SET password_hash = ? WHERE name = ?", arguments: [hash, user])
                guard db.changesCount == 1 else { throw VaultError.unknownUser(user) }
            }
        }
    }

    public func deleteUser(named name: String) throws {
        try run {
            try db.write { db in
                try db.execute(sql: "DELETE FROM users WHERE name = ?", arguments: [name])
                guard db.changesCount == 1 else { throw VaultError.unknownUser(name) }
                try db.execute(
                    sql: "DELETE FROM grants WHERE subject_kind = 'user' AND subject = ?", arguments: [name])
            }
        }
    }

    public func users() throws -> [UserRecord] {
        try run {
            try db.read {
                try Row.fetchAll(try $0.cachedStatement(sql: "SELECT * FROM users ORDER BY name")).map(Self.user)
            }
        }
    }

    public func createSession(_ session: SessionRecord) throws {
        try run {
            try db.write { db in
                guard
                    try Int.fetchOne(
                        try db.cachedStatement(sql: "SELECT 1 FROM users WHERE name = ?"), arguments: [session.user])
                        != nil
                else { throw VaultError.unknownUser(session.user) }
                try db.execute(
                    sql: "INSERT INTO sessions (id, secret_hash, user, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        session.id, session.secretHash, session.user, session.createdAt.timeIntervalSince1970,
                        session.expiresAt.timeIntervalSince1970,
                    ])
            }
        }
    }

    public func session(id: String) throws -> SessionRecord? {
        try run {
            try db.read { db in
                try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM sessions WHERE id = ?"), arguments: [id])
                    .map {
                        SessionRecord(
                            id: $0["id"], secretHash: $0["secret_hash"], user: $0["user"],
                            createdAt: Date(timeIntervalSince1970: $0["created_at"]),
                            expiresAt: Date(timeIntervalSince1970: $0["expires_at"]))
                    }
            }
        }
    }

    public func deleteSession(id: String) throws {
        try run { try db.write { try $0.execute(sql: "DELETE FROM sessions WHERE id = ?", arguments: [id]) } }
    }

    public func deleteSessions(user: String) throws {
        try run { try db.write { try $0.execute(sql: "DELETE FROM sessions WHERE user = ?", arguments: [user]) } }
    }

    public func consumeRecoveryCode(user: String, hash: String) throws -> Bool {
        try run {
            try db.write { db in
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT recovery_codes FROM users WHERE name = ?", arguments: [user])
                else { return false }
                var codes = Self.decodeList(row["recovery_codes"])
                guard let index = codes.firstIndex(of: hash) else { return false }
                codes.remove(at: index)
                try db.execute(
                    sql: "UPDATE users SET recovery_codes = ? WHERE name = ?",
                    arguments: [try Self.encodeList(codes), user])
                return true
            }
        }
    }

    public func consumeTOTPStep(user: String, step: Int64) throws -> Bool {
        try run {
            try db.write { db in
                try db.execute(
                    sql: """
                        UPDATE users SET totp_last_step = ?
                        WHERE name = ? AND (totp_last_step IS NULL OR totp_last_step < ?)
                        """, arguments: [step, user, step])
                return db.changesCount == 1
            }
        }
    }

    static func encodeList(_ list: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(list), as: UTF8.self)
    }

    static func decodeList(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    static func user(_ row: Row) -> UserRecord {
        UserRecord(
            name: row["name"], passwordHash: row["password_hash"], roles: decodeList(row["roles"]),
            sealedTOTPSecret: row["totp_secret"], totpLastStep: row["totp_last_step"],
            pendingTOTPSecret: row["totp_pending"], recoveryCodeHashes: decodeList(row["recovery_codes"]),
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }
}
