import Foundation
import Storage
import Testing
import VaultCore

/// The behaviour every `IdentityStore` must show: `try IdentityStoreConformance.run { … }`.
public enum IdentityStoreConformance {
    public static func run(makeStore: () throws -> any IdentityStore) throws {
        let store = try makeStore()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let alice = UserRecord(name: "alice", passwordHash: "$argon2id$x", roles: ["admin"], createdAt: now)
        #expect(try store.user(named: "alice") == nil)
        try store.createUser(alice)
        #expect(throws: VaultError.userExists("alice")) { try store.createUser(alice) }
        #expect(try store.user(named: "alice") == alice)

        var updated = alice
        updated.roles = ["consumer", "auditor"]
        updated.sealedTOTPSecret = "sealed"
        try store.updateUser(updated)
        #expect(try store.user(named: "alice") == updated)
        #expect(throws: VaultError.unknownUser("bob")) {
            try store.updateUser(UserRecord(name: "bob", passwordHash: "h", roles: [], createdAt: now))
        }
        try store.createUser(UserRecord(name: "bob", passwordHash: "h", roles: [], createdAt: now))
        #expect(try store.users().map(\.name) == ["alice", "bob"])

        // TOTP steps only move forward.
        #expect(try store.consumeTOTPStep(user: "alice", step: 100))
        #expect(try !store.consumeTOTPStep(user: "alice", step: 100))
        #expect(try !store.consumeTOTPStep(user: "alice", step: 99))
        #expect(try store.consumeTOTPStep(user: "alice", step: 101))
        #expect(try store.user(named: "alice")?.totpLastStep == 101)
        try store.setPasswordHash(user: "alice", hash: "$argon2id$new")
        #expect(try store.user(named: "alice")?.passwordHash == "$argon2id$new")
        #expect(try store.user(named: "alice")?.totpLastStep == 101, "a password change keeps the TOTP step")
        #expect(throws: VaultError.unknownUser("nobody")) { try store.setPasswordHash(user: "nobody", hash: "h") }

        // Recovery codes are used once.
        var withCodes = try #require(try store.user(named: "alice"))
        withCodes.recoveryCodeHashes = ["h1", "h2"]
        withCodes.pendingTOTPSecret = "pending"
        try store.updateUser(withCodes)
        #expect(try store.user(named: "alice")?.pendingTOTPSecret == "pending")
        #expect(try store.consumeRecoveryCode(user: "alice", hash: "h1"))
        #expect(try !store.consumeRecoveryCode(user: "alice", hash: "h1"))
        #expect(try !store.consumeRecoveryCode(user: "nobody", hash: "h2"))
        #expect(try store.user(named: "alice")?.recoveryCodeHashes == ["h2"])

        // Sessions belong to existing users and go with them.
        let session = SessionRecord(
            id: "s1", secretHash: "h", user: "bob", createdAt: now, expiresAt: now.addingTimeInterval(3600))
        try store.createSession(session)
        #expect(try store.session(id: "s1") == session)
        #expect(throws: VaultError.unknownUser("carol")) {
            try store.createSession(
                SessionRecord(id: "s2", secretHash: "h", user: "carol", createdAt: now, expiresAt: now))
        }
        try store.deleteUser(named: "bob")
        #expect(try store.session(id: "s1") == nil)
        #expect(throws: VaultError.unknownUser("bob")) { try store.deleteUser(named: "bob") }
        try store.createSession(
            SessionRecord(id: "s3", secretHash: "h", user: "alice", createdAt: now, expiresAt: now))
        try store.deleteSession(id: "s3")
        #expect(try store.session(id: "s3") == nil)
    }
}
