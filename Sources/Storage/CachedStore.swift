import Foundation
import Synchronization
import VaultCore

/// What most requests read — the caller's session or token, user, roles and grants, and the
/// model's versions — kept in memory while the store is unchanged, so authorizing and answering
/// a request cost no database read. Any commit to the store (by this process or another) empties
/// the cache before the next lookup, so a revocation takes effect on the very next request.
///
/// Writes and every other read go straight to the store. The "last used" stamps of grants and
/// tokens are written at most once a minute per id (the store keeps no finer resolution).
public final class CachedStore: MetadataStore, IdentityStore, AccessStore, Sendable {
    public typealias Backing = MetadataStore & IdentityStore & AccessStore & ChangeTracking

    let store: any Backing
    let cache = Mutex(Cache())

    struct Cache {
        var changeCount: Int64 = -1
        var users: [String: UserRecord?] = [:]
        var sessions: [String: SessionRecord?] = [:]
        var tokens: [String: TokenRecord?] = [:]
        var certificates: [String: CertificateRecord?] = [:]
        /// Every role, under the key `all`.
        var roles: [String: [RoleRecord]] = [:]
        var grants: [GrantsKey: [GrantRecord]] = [:]
        var versions: [ModelName: [VersionRecord]] = [:]
        /// Keyed by model and number (nil: the latest).
        var version: [ModelVersionKey: VersionRecord] = [:]
        /// Values callers computed from a model's records (see `derived`).
        var derived: [ModelName: any Sendable] = [:]
        /// When this process last wrote each grant's or token's last-used stamp; survives
        /// emptying, since that write is itself a change.
        var touched: [String: Date] = [:]
    }

    /// Raised, in `memoryOnly`, by anything that would wait on the store.
    struct WouldWait: Error {}

    /// Set inside `withoutWaiting`: answer from memory only, as of this change count. Kept per
    /// thread, not per task: `withoutWaiting`'s body is synchronous, so it runs on one thread from
    /// start to end, and setting a thread's value costs less than pushing a task-local's.
    static var memoryOnly: Int64? {
        guard let value = pthread_getspecific(memoryOnlyKey) else { return nil }
        return Int64(Int(bitPattern: value) - 1)
    }

    /// The thread-specific slot of `memoryOnly`: the change count plus one, or nil.
    static let memoryOnlyKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "no thread-specific key left for the store cache")
        return key
    }()
    static let capacity = 10_000

    public init(_ store: any Backing) {
        self.store = store
    }

    /// Runs `body` answering only from memory: nil as soon as it needs the store (a cache miss,
    /// a write), so the caller can run it again where blocking is fine. `body` must be safe to
    /// repeat up to its first store access.
    public func withoutWaiting<T>(_ body: () throws -> T) throws -> T? {
        do {
            let seen = try store.changeCount()
            precondition(seen >= 0, "a change count is never negative")
            let outer = pthread_getspecific(Self.memoryOnlyKey)
            pthread_setspecific(Self.memoryOnlyKey, UnsafeRawPointer(bitPattern: Int(seen) + 1))
            defer { pthread_setspecific(Self.memoryOnlyKey, outer) }
            return try body()
        } catch is WouldWait {
            return nil
        }
    }

    /// A value computed from what this store holds about `model` (its API answer, say), kept
    /// until the store changes. `compute` must read the store only through this object.
    public func derived<Value: Sendable>(for model: ModelName, _ compute: () throws -> Value) throws -> Value {
        let seen = try changeCount()
        if let hit = cache.withLock({ cache -> Value? in
            Self.refresh(&cache, seen)
            return cache.derived[model] as? Value
        }) {
            return hit
        }
        let value = try compute()
        cache.withLock { cache in
            guard cache.changeCount == seen else { return }
            if cache.derived.count >= Self.capacity { cache.derived.removeAll() }
            cache.derived[model] = value
        }
        return value
    }

    /// The store's change count — asked once per `withoutWaiting` scope, since a request's
    /// lookups are meant to see one state anyway.
    func changeCount() throws -> Int64 {
        if let seen = Self.memoryOnly { return seen }
        return try store.changeCount()
    }

    /// The cached answer for `key`, or the store's (remembered unless a change came in between).
    /// Inlined, so that each caller's literal key path becomes a direct access to its table: a key
    /// path applied at run time costs generic metadata lookups on every request.
    @inline(__always)
    func cached<Key: Hashable & Sendable, Value: Sendable>(
        _ table: WritableKeyPath<Cache, [Key: Value]>, _ key: Key, read: () throws -> Value
    ) throws -> Value {
        let seen = try changeCount()
        if let hit = cache.withLock({ cache -> Value? in
            Self.refresh(&cache, seen)
            return cache[keyPath: table][key]
        }) {
            return hit
        }
        let value = try direct(read)
        cache.withLock { cache in
            guard cache.changeCount == seen else { return }
            // Bounded: lookups of unknown ids (guessed tokens) must not grow it without end.
            if cache[keyPath: table].count >= Self.capacity { cache[keyPath: table].removeAll() }
            cache[keyPath: table][key] = value
        }
        return value
    }

    /// A call that needs the store: refused in `memoryOnly`.
    func direct<T>(_ body: () throws -> T) throws -> T {
        if Self.memoryOnly != nil { throw WouldWait() }
        return try body()
    }

    static func refresh(_ cache: inout Cache, _ seen: Int64) {
        guard cache.changeCount != seen else { return }
        let touched = cache.touched
        cache = Cache(changeCount: seen, touched: touched)
    }

    /// Writes a last-used stamp unless this process wrote one for `id` within the minute.
    func touch(_ id: String, at date: Date, write: () throws -> Void) throws {
        let due = cache.withLock { ($0.touched[id].map { date.timeIntervalSince($0) >= 60 }) ?? true }
        guard due else { return }
        try direct(write)
        cache.withLock { $0.touched[id] = date }
    }

    struct GrantsKey: Hashable, Sendable {
        var user: String
        var roles: [String]
    }

    struct ModelVersionKey: Hashable, Sendable {
        var model: ModelName
        var number: Int?
    }

    // MARK: cached reads

    public func versions(of model: ModelName) throws -> [VersionRecord] {
        try cached(\.versions, model) { try store.versions(of: model) }
    }

    public func version(of model: ModelName, number: Int?) throws -> VersionRecord {
        try cached(\.version, ModelVersionKey(model: model, number: number)) {
            try store.version(of: model, number: number)
        }
    }

    public func user(named name: String) throws -> UserRecord? {
        try cached(\.users, name) { try store.user(named: name) }
    }

    public func session(id: String) throws -> SessionRecord? {
        try cached(\.sessions, id) { try store.session(id: id) }
    }

    public func token(id: String) throws -> TokenRecord? {
        try cached(\.tokens, id) { try store.token(id: id) }
    }

    public func certificate(serial: String) throws -> CertificateRecord? {
        try cached(\.certificates, serial) { try store.certificate(serial: serial) }
    }

    public func grants(user: String, roles: [String]) throws -> [GrantRecord] {
        try cached(\.grants, GrantsKey(user: user, roles: roles)) { try store.grants(user: user, roles: roles) }
    }

    public func roles() throws -> [RoleRecord] {
        try cached(\.roles, "all") { try store.roles() }
    }

    public func touchGrant(id: String, at date: Date) throws {
        try touch("grant:" + id, at: date) { try store.touchGrant(id: id, at: date) }
    }

    public func touchToken(id: String, at date: Date) throws {
        try touch("token:" + id, at: date) { try store.touchToken(id: id, at: date) }
    }

    // MARK: straight to the store

    public func addVersion(model: ModelName, note: String?, files: [FileRecord], createdAt: Date) throws
        -> VersionRecord
    {
        try direct { try store.addVersion(model: model, note: note, files: files, createdAt: createdAt) }
    }
    public func models(namespace: String?) throws -> [ModelSummary] {
        try direct { try store.models(namespace: namespace) }
    }
    public func deleteVersion(of model: ModelName, number: Int) throws -> VersionRecord {
        try direct { try store.deleteVersion(of: model, number: number) }
    }
    public func referencedBlobIDs() throws -> Set<String> { try direct { try store.referencedBlobIDs() } }
    public func recordDownload(_ download: DownloadRecord) throws -> Int64 {
        try direct { try store.recordDownload(download) }
    }
    public func completeDownload(id: Int64, sentSHA256: String) throws {
        try direct { try store.completeDownload(id: id, sentSHA256: sentSHA256) }
    }
    public func downloads(of model: ModelName?) throws -> [DownloadRecord] {
        try direct { try store.downloads(of: model) }
    }
    public func sentDigest(fileSHA256: String, recipient: String?) throws -> String? {
        try direct { try store.sentDigest(fileSHA256: fileSHA256, recipient: recipient) }
    }

    public func createUser(_ user: UserRecord) throws { try direct { try store.createUser(user) } }
    public func updateUser(_ user: UserRecord) throws { try direct { try store.updateUser(user) } }
    public func setPasswordHash(user: String, hash: String) throws {
        try direct { try store.setPasswordHash(user: user, hash: hash) }
    }
    public func deleteUser(named name: String) throws { try direct { try store.deleteUser(named: name) } }
    public func users() throws -> [UserRecord] { try direct { try store.users() } }
    public func createSession(_ session: SessionRecord) throws { try direct { try store.createSession(session) } }
    public func deleteSession(id: String) throws { try direct { try store.deleteSession(id: id) } }
    public func deleteSessions(user: String) throws { try direct { try store.deleteSessions(user: user) } }
    public func consumeRecoveryCode(user: String, hash: String) throws -> Bool {
        try direct { try store.consumeRecoveryCode(user: user, hash: hash) }
    }
    public func consumeTOTPStep(user: String, step: Int64) throws -> Bool {
        try direct { try store.consumeTOTPStep(user: user, step: step) }
    }
    public func role(named name: String) throws -> RoleRecord? { try direct { try store.role(named: name) } }
    public func createRole(_ role: RoleRecord) throws { try direct { try store.createRole(role) } }
    public func updateRole(_ role: RoleRecord) throws { try direct { try store.updateRole(role) } }
    public func deleteRole(named name: String) throws { try direct { try store.deleteRole(named: name) } }
    public func grants() throws -> [GrantRecord] { try direct { try store.grants() } }
    public func createGrant(_ grant: GrantRecord) throws { try direct { try store.createGrant(grant) } }
    public func deleteGrant(id: String) throws { try direct { try store.deleteGrant(id: id) } }
    public func createToken(_ token: TokenRecord) throws { try direct { try store.createToken(token) } }
    public func tokens(owner: String?) throws -> [TokenRecord] { try direct { try store.tokens(owner: owner) } }
    public func recordTokenNetwork(id: String, network: String, at date: Date) throws -> NetworkSighting {
        try direct { try store.recordTokenNetwork(id: id, network: network, at: date) }
    }

    public func revokeToken(id: String, at date: Date) throws {
        try direct { try store.revokeToken(id: id, at: date) }
    }
    public func createCertificate(_ certificate: CertificateRecord) throws {
        try direct { try store.createCertificate(certificate) }
    }
    public func certificates() throws -> [CertificateRecord] { try direct { try store.certificates() } }
    public func revokeCertificate(serial: String, at date: Date) throws {
        try direct { try store.revokeCertificate(serial: serial, at: date) }
    }
}
