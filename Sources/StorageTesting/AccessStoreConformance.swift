import Foundation
import Storage
import Testing
import VaultCore

/// The behaviour every `AccessStore` must show: `try AccessStoreConformance.run { … }`.
public enum AccessStoreConformance {
    public static func run(makeStore: () throws -> any AccessStore & IdentityStore) throws {
        let store = try makeStore()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try store.createUser(UserRecord(name: "bob", passwordHash: "h", roles: [], createdAt: now))

        // Built-in roles exist from the start, with fixed capabilities.
        #expect(try store.roles().map(\.name) == ["admin", "auditor", "consumer", "publisher"])
        var consumer = try #require(try store.role(named: "consumer"))
        #expect(consumer.builtIn && consumer.capabilities == [.list, .read, .pull])
        consumer.requireMFA = true
        consumer.allowedNetworks = [try IPNetwork("10.0.0.0/8")]
        try store.updateRole(consumer)
        #expect(try store.role(named: "consumer") == consumer)
        consumer.capabilities.insert(.push)
        #expect(throws: VaultError.self) { try store.updateRole(consumer) }
        #expect(try store.role(named: "consumer")?.capabilities == [.list, .read, .pull])
        #expect(throws: VaultError.self) { try store.deleteRole(named: "admin") }

        // Custom roles: unique, deletable only when nothing refers to them.
        let ml = RoleRecord(name: "ml", capabilities: [.pull], createdAt: now)
        try store.createRole(ml)
        #expect(throws: VaultError.roleExists("ml")) { try store.createRole(ml) }
        try store.updateUser(UserRecord(name: "bob", passwordHash: "h", roles: ["ml"], createdAt: now))
        #expect(throws: VaultError.self) { try store.deleteRole(named: "ml") }
        try store.updateUser(UserRecord(name: "bob", passwordHash: "h", roles: [], createdAt: now))

        // Grants need an existing subject; they are found by user and by role.
        let toBob = GrantRecord(
            id: "g1", subject: .user("bob"), pattern: try ModelPattern("acme/*"), capabilities: [.pull, .read],
            effect: .allow, expiresAt: now.addingTimeInterval(60), createdAt: now, createdBy: "admin")
        let toML = GrantRecord(
            id: "g2", subject: .role("ml"), pattern: try ModelPattern("*"), capabilities: [.push], effect: .deny,
            expiresAt: nil, createdAt: now.addingTimeInterval(1), createdBy: "admin")
        try store.createGrant(toBob)
        try store.createGrant(toML)
        #expect(throws: VaultError.unknownUser("eve")) {
            var g = toBob
            g.id = "g3"
            g.subject = .user("eve")
            try store.createGrant(g)
        }
        #expect(throws: VaultError.unknownRole("nope")) {
            var g = toBob
            g.id = "g3"
            g.subject = .role("nope")
            try store.createGrant(g)
        }
        #expect(try store.grants() == [toBob, toML])
        #expect(try store.grants(user: "bob", roles: []) == [toBob])
        #expect(try store.grants(user: "bob", roles: ["ml"]) == [toBob, toML])
        #expect(throws: VaultError.self) { try store.deleteRole(named: "ml") }

        // Last use is recorded, at most once a minute.
        try store.touchGrant(id: "g1", at: now.addingTimeInterval(10))
        try store.touchGrant(id: "g1", at: now.addingTimeInterval(20))
        #expect(try store.grants().first?.lastUsedAt == now.addingTimeInterval(10))
        try store.touchGrant(id: "g1", at: now.addingTimeInterval(100))
        #expect(try store.grants().first?.lastUsedAt == now.addingTimeInterval(100))

        try store.deleteGrant(id: "g2")
        #expect(throws: VaultError.unknownGrant("g2")) { try store.deleteGrant(id: "g2") }
        try store.deleteRole(named: "ml")
        #expect(try store.role(named: "ml") == nil)

        // Tokens: stored with their scopes, revoked once, gone with their owner.
        let token = TokenRecord(
            id: "t1", name: "ci", owner: "bob", secretHash: "keyed-hash",
            scopes: [TokenScope(pattern: try ModelPattern("acme/*"), capabilities: [.pull])],
            expiresAt: now.addingTimeInterval(3600), createdAt: now, allowedNetworks: [try IPNetwork("10.0.0.0/8")],
            requestsPerSecond: 5)
        try store.createToken(token)
        #expect(try store.token(id: "t1") == token)
        #expect(try store.tokens(owner: "bob") == [token])
        #expect(try store.tokens(owner: "alice") == [])
        #expect(throws: VaultError.unknownUser("eve")) {
            var t = token
            t.id = "t2"
            t.owner = "eve"
            try store.createToken(t)
        }
        // Certificates: recorded for an existing user, revoked once.
        let certificate = CertificateRecord(
            serial: "0a1b", user: "bob", issuedAt: now, expiresAt: now.addingTimeInterval(86400), issuedBy: "admin")
        try store.createCertificate(certificate)
        #expect(try store.certificate(serial: "0a1b") == certificate)
        #expect(throws: VaultError.unknownUser("eve")) {
            var c = certificate
            c.serial = "0a1c"
            c.user = "eve"
            try store.createCertificate(c)
        }
        try store.revokeCertificate(serial: "0a1b", at: now.addingTimeInterval(3))
        try store.revokeCertificate(serial: "0a1b", at: now.addingTimeInterval(4))
        #expect(try store.certificates().map(\.revokedAt) == [now.addingTimeInterval(3)])
        #expect(throws: VaultError.unknownCertificate("ff")) { try store.revokeCertificate(serial: "ff", at: now) }

        try store.revokeToken(id: "t1", at: now.addingTimeInterval(5))
        try store.revokeToken(id: "t1", at: now.addingTimeInterval(9))
        #expect(try store.token(id: "t1")?.revokedAt == now.addingTimeInterval(5))
        #expect(throws: VaultError.unknownToken("t9")) { try store.revokeToken(id: "t9", at: now) }
        try store.touchToken(id: "t1", at: now.addingTimeInterval(7))
        // The networks a token was used from: the first, then known, then a new one; kept per token.
        #expect(try store.recordTokenNetwork(id: "t1", network: "10.1.2.0/24", at: now) == .first)
        #expect(try store.recordTokenNetwork(id: "t1", network: "10.1.2.0/24", at: now) == .known)
        #expect(try store.recordTokenNetwork(id: "t1", network: "192.0.2.0/24", at: now) == .new)
        #expect(try store.recordTokenNetwork(id: "t2", network: "192.0.2.0/24", at: now) == .first)
        #expect(try store.token(id: "t1")?.lastUsedAt == now.addingTimeInterval(7))

        #expect(try store.grants().map(\.id) == ["g1"])
        try store.deleteUser(named: "bob")
        #expect(try store.token(id: "t1") == nil)
        #expect(try store.certificates() == [])
        #expect(try store.grants() == [])
    }
}
