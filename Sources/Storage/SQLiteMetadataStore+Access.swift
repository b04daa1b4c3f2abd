import Foundation
import GRDB
import VaultCore

extension SQLiteMetadataStore: AccessStore {
    static func registerAccessMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v4-access") { db in
            try db.execute(
                sql: """
                    CREATE TABLE roles (
                        name TEXT PRIMARY KEY,
                        capabilities TEXT NOT NULL,
                        require_mfa INTEGER NOT NULL DEFAULT 0,
                        networks TEXT NOT NULL DEFAULT '[]',
                        built_in INTEGER NOT NULL DEFAULT 0,
                        created_at DOUBLE NOT NULL);
                    CREATE TABLE grants (
                        id TEXT PRIMARY KEY,
                        subject_kind TEXT NOT NULL,
                        subject TEXT NOT NULL,
                        pattern TEXT NOT NULL,
                        capabilities TEXT NOT NULL,
                        effect TEXT NOT NULL,
                        expires_at DOUBLE,
                        created_at DOUBLE NOT NULL,
                        created_by TEXT NOT NULL,
                        last_used_at DOUBLE);
                    CREATE INDEX grants_by_subject ON grants(subject_kind, subject);
                    CREATE TABLE tokens (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        owner TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                        secret_hash TEXT NOT NULL,
                        scopes TEXT NOT NULL,
                        expires_at DOUBLE NOT NULL,
                        created_at DOUBLE NOT NULL,
                        revoked_at DOUBLE,
                        last_used_at DOUBLE,
                        networks TEXT NOT NULL DEFAULT '[]',
                        requests_per_second DOUBLE);
                    """)
            for role in RoleRecord.builtIns(createdAt: Date()) {
                try insert(role, db)
            }
        }
    }

    static func registerCertificateMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v5-certificates") { db in
            try db.execute(
                sql: """
                    CREATE TABLE certificates (
                        serial TEXT PRIMARY KEY,
                        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                        issued_at DOUBLE NOT NULL,
                        expires_at DOUBLE NOT NULL,
                        issued_by TEXT NOT NULL,
                        revoked_at DOUBLE);
                    """)
        }
    }

    public func createCertificate(_ certificate: CertificateRecord) throws {
        try run {
            try db.write { db in
                guard
                    try Int.fetchOne(
                        try db.cachedStatement(sql: "SELECT 1 FROM users WHERE name = ?"), arguments: [certificate.user]
                    )
                        != nil
                else { throw VaultError.unknownUser(certificate.user) }
                try db.execute(
                    sql: """
                        INSERT INTO certificates (serial, user, issued_at, expires_at, issued_by, revoked_at)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        certificate.serial, certificate.user, certificate.issuedAt.timeIntervalSince1970,
                        certificate.expiresAt.timeIntervalSince1970, certificate.issuedBy,
                        certificate.revokedAt?.timeIntervalSince1970,
                    ])
            }
        }
    }

    public func certificate(serial: String) throws -> CertificateRecord? {
        try run {
            try db.read {
                try Row.fetchOne(
                    try $0.cachedStatement(sql: "SELECT * FROM certificates WHERE serial = ?"), arguments: [serial]
                )
                .map(Self.certificate)
            }
        }
    }

    public func certificates() throws -> [CertificateRecord] {
        try run {
            try db.read {
                try Row.fetchAll(try $0.cachedStatement(sql: "SELECT * FROM certificates ORDER BY issued_at DESC")).map(
                    Self.certificate)
            }
        }
    }

    public func revokeCertificate(serial: String, at date: Date) throws {
        try run {
            try db.write { db in
                guard
                    try Int.fetchOne(
                        try db.cachedStatement(sql: "SELECT 1 FROM certificates WHERE serial = ?"), arguments: [serial])
                        != nil
                else { throw VaultError.unknownCertificate(serial) }
                try db.execute(
                    sql: "UPDATE certificates SET revoked_at = ? WHERE serial = ? AND revoked_at IS NULL",
                    arguments: [date.timeIntervalSince1970, serial])
            }
        }
    }

    static func certificate(_ row: Row) -> CertificateRecord {
        CertificateRecord(
            serial: row["serial"], user: row["user"], issuedAt: Date(timeIntervalSince1970: row["issued_at"]),
            expiresAt: Date(timeIntervalSince1970: row["expires_at"]), issuedBy: row["issued_by"],
            revokedAt: date(row["revoked_at"]))
    }

    static func insert(_ role: RoleRecord, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO roles (name, capabilities, require_mfa, networks, built_in, created_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                role.name, encodeList(role.capabilities.sorted().map(\.rawValue)), role.requireMFA,
                try encodeJSON(role.allowedNetworks), role.builtIn, role.createdAt.timeIntervalSince1970,
            ])
    }

    public func roles() throws -> [RoleRecord] {
        try run {
            try db.read {
                try Row.fetchAll(try $0.cachedStatement(sql: "SELECT * FROM roles ORDER BY name")).map(Self.role)
            }
        }
    }

    public func role(named name: String) throws -> RoleRecord? {
        try run {
            try db.read {
                try Row.fetchOne(try $0.cachedStatement(sql: "SELECT * FROM roles WHERE name = ?"), arguments: [name])
                    .map(Self.role)
            }
        }
    }

    public func createRole(_ role: RoleRecord) throws {
        try run {
            try db.write { db in
                guard
                    try Int.fetchOne(
                        try db.cachedStatement(sql: "SELECT 1 FROM roles WHERE name = ?"), arguments: [role.name])
                        == nil
                else { throw VaultError.roleExists(role.name) }
                try Self.insert(role, db)
            }
        }
    }

    public func updateRole(_ role: RoleRecord) throws {
        try run {
            try db.write { db in
                guard
                    let old = try Row.fetchOne(
                        try db.cachedStatement(sql: "SELECT * FROM roles WHERE name = ?"), arguments: [role.name]
                    )
                    .map(Self.role)
                else { throw VaultError.unknownRole(role.name) }
                if old.builtIn && old.capabilities != role.capabilities {
                    throw VaultError.conflict(
                        "the capabilities of built-in role \(role.name) cannot change",
                        hint: "create a custom role with the capabilities you need")
                }
                try db.execute(
                    sql: "UPDATE roles SET capabilities = ?, require_mfa = ?, networks = ? WHERE name = ?",
                    arguments: [
                        try Self.encodeList(role.capabilities.sorted().map(\.rawValue)), role.requireMFA,
                        try Self.encodeJSON(role.allowedNetworks), role.name,
                    ])
            }
        }
    }

    public func deleteRole(named name: String) throws {
        try run {
            try db.write { db in
                guard
                    let role = try Row.fetchOne(
                        try db.cachedStatement(sql: "SELECT * FROM roles WHERE name = ?"), arguments: [name]
                    )
                    .map(Self.role)
                else { throw VaultError.unknownRole(name) }
                if role.builtIn {
                    throw VaultError.conflict("built-in role \(name) cannot be deleted", hint: nil)
                }
                let holders = try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM users ORDER BY name")).map(
                    Self.user
                )
                .filter { $0.roles.contains(name) }.map(\.name)
                if !holders.isEmpty {
                    throw VaultError.conflict(
                        "role \(name) is held by \(holders.joined(separator: ", "))",
                        hint: "take it away first: mvault user roles USER --remove \(name)")
                }
                let grantIDs = try String.fetchAll(
                    db, sql: "SELECT id FROM grants WHERE subject_kind = 'role' AND subject = ?", arguments: [name])
                if !grantIDs.isEmpty {
                    throw VaultError.conflict(
                        "role \(name) is the subject of grant(s) \(grantIDs.joined(separator: ", "))",
                        hint: "revoke them first: mvault grant rm ID")
                }
                try db.execute(sql: "DELETE FROM roles WHERE name = ?", arguments: [name])
            }
        }
    }

    public func grants() throws -> [GrantRecord] {
        try run {
            try db.read {
                try Row.fetchAll(try $0.cachedStatement(sql: "SELECT * FROM grants ORDER BY created_at, id")).map(
                    Self.grant)
            }
        }
    }

    public func grants(user: String, roles: [String]) throws -> [GrantRecord] {
        try run {
            try db.read { db in
                let marks = Array(repeating: "?", count: roles.count).joined(separator: ",")
                var sql = "SELECT * FROM grants WHERE (subject_kind = 'user' AND subject = ?)"
                if !roles.isEmpty { sql += " OR (subject_kind = 'role' AND subject IN (\(marks)))" }
                return try Row.fetchAll(
                    db, sql: sql + " ORDER BY created_at, id", arguments: StatementArguments([user] + roles)
                )
                .map(Self.grant)
            }
        }
    }

    public func createGrant(_ grant: GrantRecord) throws {
        try run {
            try db.write { db in
                switch grant.subject {
                case .user(let name):
                    guard
                        try Int.fetchOne(
                            try db.cachedStatement(sql: "SELECT 1 FROM users WHERE name = ?"), arguments: [name]) != nil
                    else { throw VaultError.unknownUser(name) }
                case .role(let name):
                    guard
                        try Int.fetchOne(
                            try db.cachedStatement(sql: "SELECT 1 FROM roles WHERE name = ?"), arguments: [name]) != nil
                    else { throw VaultError.unknownRole(name) }
                }
                try db.execute(
                    sql: """
                        INSERT INTO grants (id, subject_kind, subject, pattern, capabilities, effect, expires_at,
                                            created_at, created_by, last_used_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        grant.id, grant.subject.kind, grant.subject.name, grant.pattern.text,
                        try Self.encodeList(grant.capabilities.sorted().map(\.rawValue)), grant.effect.rawValue,
                        grant.expiresAt?.timeIntervalSince1970, grant.createdAt.timeIntervalSince1970, grant.createdBy,
                        grant.lastUsedAt?.timeIntervalSince1970,
                    ])
            }
        }
    }

    public func deleteGrant(id: String) throws {
        try run {
            try db.write { db in
                try db.execute(sql: "DELETE FROM grants WHERE id = ?", arguments: [id])
                guard db.changesCount == 1 else { throw VaultError.unknownGrant(id) }
            }
        }
    }

    public func touchGrant(id: String, at date: Date) throws {
        try run {
            try db.write { db in
                try db.execute(
                    sql:
                        "UPDATE grants SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                    arguments: [date.timeIntervalSince1970, id, date.timeIntervalSince1970 - 60])
            }
        }
    }

    public func createToken(_ token: TokenRecord) throws {
        try run {
            try db.write { db in
                guard
                    try Int.fetchOne(
                        try db.cachedStatement(sql: "SELECT 1 FROM users WHERE name = ?"), arguments: [token.owner])
                        != nil
                else { throw VaultError.unknownUser(token.owner) }
                try db.execute(
                    sql: """
                        INSERT INTO tokens (id, name, owner, secret_hash, scopes, expires_at, created_at, revoked_at,
                                            last_used_at, networks, requests_per_second)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        token.id, token.name, token.owner, token.secretHash, try Self.encodeJSON(token.scopes),
                        token.expiresAt.timeIntervalSince1970, token.createdAt.timeIntervalSince1970,
                        token.revokedAt?.timeIntervalSince1970, token.lastUsedAt?.timeIntervalSince1970,
                        try Self.encodeJSON(token.allowedNetworks), token.requestsPerSecond,
                    ])
            }
        }
    }

    public func token(id: String) throws -> TokenRecord? {
        try run {
            try db.read {
                try Row.fetchOne(try $0.cachedStatement(sql: "SELECT * FROM tokens WHERE id = ?"), arguments: [id]).map(
                    Self.token)
            }
        }
    }

    public func tokens(owner: String?) throws -> [TokenRecord] {
        try run {
            try db.read { db in
                if let owner {
                    return try Row.fetchAll(
                        db, sql: "SELECT * FROM tokens WHERE owner = ? ORDER BY created_at DESC", arguments: [owner]
                    ).map(Self.token)
                }
                return try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM tokens ORDER BY created_at DESC"))
                    .map(Self.token)
            }
        }
    }

    public func revokeToken(id: String, at date: Date) throws {
        try run {
            try db.write { db in
                guard
                    try Int.fetchOne(try db.cachedStatement(sql: "SELECT 1 FROM tokens WHERE id = ?"), arguments: [id])
                        != nil
                else { throw VaultError.unknownToken(id) }
                try db.execute(
                    sql: "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    arguments: [date.timeIntervalSince1970, id])
            }
        }
    }

    static func registerTokenNetworkMigration(_ m: inout DatabaseMigrator) {
        // No foreign key: a revoked or deleted token's networks stay on record.
        m.registerMigration("v7-token-networks") { db in
            try db.execute(
                sql: """
                    CREATE TABLE token_networks (
                        token_id TEXT NOT NULL,
                        network TEXT NOT NULL,
                        first_seen DOUBLE NOT NULL,
                        PRIMARY KEY (token_id, network));
                    """)
        }
    }

    public func recordTokenNetwork(id: String, network: String, at date: Date) throws -> NetworkSighting {
        try run {
            try db.write { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO token_networks (token_id, network, first_seen) VALUES (?, ?, ?)",
                    arguments: [id, network, date.timeIntervalSince1970])
                guard db.changesCount == 1 else { return .known }
                let others = try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM token_networks WHERE token_id = ? AND network != ?",
                    arguments: [id, network])
                return others == 0 ? .first : .new
            }
        }
    }

    public func touchToken(id: String, at date: Date) throws {
        try run {
            try db.write { db in
                try db.execute(
                    sql:
                        "UPDATE tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                    arguments: [date.timeIntervalSince1970, id, date.timeIntervalSince1970 - 60])
            }
        }
    }

    static func encodeJSON(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    static func capabilities(_ text: String) -> Set<Capability> {
        Set(decodeList(text).compactMap(Capability.init(rawValue:)))
    }

    static func date(_ value: Double?) -> Date? { value.map(Date.init(timeIntervalSince1970:)) }

    static func role(_ row: Row) -> RoleRecord {
        RoleRecord(
            name: row["name"], capabilities: capabilities(row["capabilities"]), requireMFA: row["require_mfa"],
            allowedNetworks: decodeJSON([IPNetwork].self, row["networks"]) ?? [], builtIn: row["built_in"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    static func grant(_ row: Row) -> GrantRecord {
        let kind: String = row["subject_kind"]
        let subject: String = row["subject"]
        return GrantRecord(
            id: row["id"], subject: kind == "role" ? .role(subject) : .user(subject),
            pattern: (try? ModelPattern(row["pattern"])) ?? (try! ModelPattern("-")),
            capabilities: capabilities(row["capabilities"]),
            effect: GrantRecord.Effect(rawValue: row["effect"]) ?? .deny, expiresAt: date(row["expires_at"]),
            createdAt: Date(timeIntervalSince1970: row["created_at"]), createdBy: row["created_by"],
            lastUsedAt: date(row["last_used_at"]))
    }

    static func token(_ row: Row) -> TokenRecord {
        TokenRecord(
            id: row["id"], name: row["name"], owner: row["owner"], secretHash: row["secret_hash"],
            scopes: decodeJSON([TokenScope].self, row["scopes"]) ?? [],
            expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
            createdAt: Date(timeIntervalSince1970: row["created_at"]), revokedAt: date(row["revoked_at"]),
            lastUsedAt: date(row["last_used_at"]), allowedNetworks: decodeJSON([IPNetwork].self, row["networks"]) ?? [],
            requestsPerSecond: row["requests_per_second"])
    }
}
