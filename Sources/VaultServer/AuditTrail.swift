import AuditLog
import Crypto
import Foundation
import Hummingbird
import Keyring
import Synchronization
import VaultCore
import VaultServices

/// The server's audit trail: every API request (except health, seal status and the OpenAPI
/// document) is recorded, and refused with 503 when its entry cannot be made durable (fail
/// closed). A request that changes something leaves a `request` entry with the policy decision,
/// durable before it acts, and a `response` entry with the outcome, durable before it is
/// acknowledged; a read (GET, HEAD) leaves one `access` entry with both, durable before its
/// answer leaves.
///
/// The log is opened at unseal, when the checkpoint signing key is available. Until then the few
/// events a sealed server sees (unseal attempts, requests refused as sealed) wait in memory, up to
/// `pendingByteLimit` bytes; past it the oldest are dropped, and the first entry after them when
/// the log opens is an alert that says how many.
///
/// What a client sent is recorded in bounded form (`bounded(_:limit:)`), so a request without
/// credentials writes at most a few KB to the fail-closed log, and holds as much memory while sealed.
final class AuditTrail: Sendable {
    static let defaultPendingByteLimit = 4 << 20
    let pendingByteLimit: Int
    /// The most bytes of one client-supplied value an entry keeps (a file name may be 1,024).
    static let fieldLimit = 256
    static let longFieldLimit = 1024

    struct State {
        var log: AuditLog?
        var hmacKey: [UInt8]?
        var pending: [AuditEvent] = []
        var pendingBytes = 0
        var dropped = 0
        /// Why the log could not be opened at unseal: every audited request is refused.
        var failure: String?
    }
    let state = Mutex(State())
    let layout: AuditLogLayout
    let checkpointEvery: Int
    let checkpointSeconds: Double

    let sinks: [AuditSink]
    let metrics: VaultMetrics

    init(
        directory: URL, checkpointEvery: Int, checkpointSeconds: Double, sinks: [AuditSink] = [],
        canaries: [ModelPattern] = [], metrics: VaultMetrics, pendingByteLimit: Int = AuditTrail.defaultPendingByteLimit
    ) {
        self.metrics = metrics
        self.pendingByteLimit = pendingByteLimit
        layout = AuditLogLayout(directory: directory)
        self.checkpointEvery = checkpointEvery
        self.checkpointSeconds = checkpointSeconds
        self.sinks = sinks
        self.canaries = canaries
        for sink in sinks {
            sink.onDrop = { [weak self] dropped in
                self?.alert(
                    "sink-drops",
                    "the audit sink \(sink.name) dropped \(dropped) event(s): its receiver was away too long")
            }
            Task.detached { await sink.run() }
        }
    }

    /// The origin line of this vault's checkpoints: stable per vault, from its verifier key.
    static func origin(_ key: CheckpointKey) -> String {
        "mvault/" + Hex.encode(Array(SHA256.hash(data: key.verifier.keyBytes).prefix(8)))
    }

    static func signingKey(_ keys: KeyHolder) throws -> CheckpointKey {
        try AuditKeys.checkpointKey(seed: try keys.derivedKey(purpose: AuditKeys.checkpointPurpose))
    }

    /// Opens the log with keys from the unsealed keyring and appends what waited. Idempotent.
    func open(_ keys: KeyHolder) async throws {
        if state.withLock({ $0.log != nil }) { return }
        let key = try Self.signingKey(keys)
        let log: AuditLog
        do {
            log = try AuditLog(
                layout: layout, origin: Self.origin(key), key: key, cosigners: keys.cosigners(name: key.name),
                checkpointEvery: checkpointEvery, checkpointSeconds: checkpointSeconds)
        } catch {
            // Another unseal that finished first holds the log (and its lock): that one is kept.
            let opened = state.withLock { s in
                if s.log == nil { s.failure = "\(error)" }
                return s.log != nil
            }
            if opened { return }
            throw error
        }
        let hmacKey = try keys.derivedKey(purpose: AuditKeys.hmacPurpose)
        let waiting: [AuditEvent] = try state.withLock { s in
            guard s.log == nil else { return [] }
            // The sinks start at this log's end before any request can append to it; and only
            // the log that is kept (two unseals at once may each open one).
            for sink in sinks { try sink.attach(log) }
            s.log = log
            s.failure = nil
            s.hmacKey = hmacKey
            defer { (s.pending, s.pendingBytes, s.dropped) = ([], 0, 0) }
            guard s.dropped > 0 else { return s.pending }
            let drop = AuditEvent(
                phase: "alert", requestID: "", action: "alert.sealed-events-dropped", actor: .init(),
                result: .init(
                    status: 0,
                    error:
                        "\(s.dropped) event(s) seen while sealed were dropped: more than \(pendingByteLimit) bytes waited"
                ))
            return [drop] + s.pending
        }
        for event in waiting { _ = try await log.append(event) }
    }

    var log: AuditLog? { state.withLock { $0.log } }

    /// `hmac-sha256:HEX` of `value` under the vault's audit HMAC key (nil while sealed).
    func hash(_ value: String) -> String? {
        guard let key = state.withLock({ $0.hmacKey }) else { return nil }
        return AuditKeys.hmac(value, key: key)
    }

    /// The `hashed` field of a session's entries: `["session": hash(id)]` (nil while sealed).
    /// Kept per session, up to 10,000: every request of a session carries the same one.
    func hashedSession(_ id: String) -> [String: String]? {
        if let known = sessions.withLock({ $0[id] }) { return known }
        guard let hmac = hash(id) else { return nil }
        let hashed = ["session": hmac]
        sessions.withLock { cache in
            if cache.count >= 10_000 { cache.removeAll() }
            cache[id] = hashed
        }
        return hashed
    }

    let sessions = Mutex<[String: [String: String]]>([:])

    /// Records an alert (phase `alert`, action `alert.KIND`): in the log and at every sink, at once,
    /// without making anyone wait.
    func alert(
        _ kind: String, _ detail: String, actor: AuditEvent.Actor = .init(), sourceIP: String? = nil,
        target: AuditEvent.Target? = nil
    ) {
        let event = AuditEvent(
            phase: "alert", requestID: "", action: "alert.\(kind)", actor: actor, sourceIP: sourceIP, target: target,
            result: .init(status: 0, error: detail))
        metrics.alert(kind: kind)
        Task { try? await record(event, durable: false) }
    }

    /// Models that are decoys: any request about one raises a critical alert.
    let canaries: [ModelPattern]

    /// `value` as an entry keeps it: whole when at most `limit` bytes, else its first `limit`
    /// bytes, its length and (once unsealed) its HMAC, so the full value can still be searched.
    func bounded(_ value: String, limit: Int = AuditTrail.fieldLimit) -> String {
        let length = value.utf8.count
        guard length > limit else { return value }
        var prefix = ""
        for character in value {
            guard prefix.utf8.count + character.utf8.count <= limit else { break }
            prefix.append(character)
        }
        let hash = hash(value).map { ", \($0)" } ?? ""
        return "\(prefix)… [\(length) bytes\(hash)]"
    }

    /// `event` with every value a client could make long in bounded form.
    func bounded(_ event: AuditEvent) -> AuditEvent {
        var event = event
        if let user = event.actor.user { event.actor.user = bounded(user) }
        if var target = event.target {
            target.model = target.model.map { bounded($0) }
            target.file = target.file.map { bounded($0, limit: Self.longFieldLimit) }
            target.name = target.name.map { bounded($0) }
            event.target = target
        }
        if let error = event.result?.error { event.result?.error = bounded(error, limit: Self.longFieldLimit) }
        if let rule = event.decision?.rule { event.decision?.rule = bounded(rule, limit: Self.longFieldLimit) }
        return event
    }

    /// Appends `event`; with `durable`, returns once it is on disk and throws 503 when it cannot be.
    /// A request tries `recordWithoutWaiting` first and awaits this only when told to.
    func record(_ event: AuditEvent, durable: Bool) async throws {
        let event = bounded(event)
        guard let log = try log(for: event) else { return }
        if durable {
            do {
                _ = try await log.append(event)
                noteWrite(nil)
            } catch {
                throw unwritable(error)
            }
        } else {
            Task { _ = try? await log.append(event) }
        }
    }

    /// Appends `event` at once, on the calling thread, when the log's device syncs quickly, and
    /// returns true once it is on disk (or kept for the log while the vault is sealed); returns
    /// false when the caller must `await record(event, durable: true)` (a group commit). Throws
    /// 503 as `record` does. Not async: every call of an async function costs a request trips
    /// through the event loop's job queue, even when it waits for nothing.
    func recordWithoutWaiting(_ event: AuditEvent) throws -> Bool {
        let event = bounded(event)
        guard let log = try log(for: event) else { return true }
        do {
            let written = try log.appendWithoutWaiting(event) != nil
            if written { noteWrite(nil) }
            return written
        } catch {
            throw unwritable(error)
        }
    }

    /// Why the latest durable append failed, until one succeeds again (health reports it).
    let writeFailure = Mutex<String?>(nil)
    let writesFailing = Atomic<Bool>(false)

    /// Why the log cannot record requests now (nil when it can, or while sealed).
    var cannotRecord: String? {
        if let failure = state.withLock({ $0.failure }) { return failure }
        return writesFailing.load(ordering: .relaxed) ? writeFailure.withLock { $0 } : nil
    }

    func noteWrite(_ error: (any Error)?) {
        if let error {
            writeFailure.withLock { $0 = "\(error)" }
            writesFailing.store(true, ordering: .relaxed)
        } else if writesFailing.load(ordering: .relaxed) {
            writesFailing.store(false, ordering: .relaxed)
        }
    }

    func unwritable(_ error: any Error) -> APIError {
        noteWrite(error)
        return APIError(
            .serviceUnavailable, "the audit log cannot record this request, so it is refused: \(error)",
            hint: "the operator must make the audit log writable again (disk space, permissions)")
    }

    /// The log to append `event` to; nil while sealed (the event waits for the log to open), and
    /// 503 once the log has failed.
    func log(for event: AuditEvent) throws -> AuditLog? {
        let (log, failure): (AuditLog?, String?) = state.withLock { s in
            if s.log == nil, s.failure == nil {
                let size = event.approximateSize
                s.pending.append(event)
                s.pendingBytes += size
                var dropping = 0
                while s.pendingBytes > pendingByteLimit, dropping < s.pending.count {
                    s.pendingBytes -= s.pending[dropping].approximateSize
                    dropping += 1
                }
                if dropping > 0 {
                    s.pending.removeFirst(dropping)
                    s.dropped += dropping
                }
            }
            return (s.log, s.failure)
        }
        if let failure {
            throw APIError(
                .serviceUnavailable, "the audit log cannot record this request, so it is refused: \(failure)",
                hint: "run `mvault audit verify` on the vault and restore the log from a backup")
        }
        return log
    }
}

/// What one request's audit entries say, filled in as the request is handled.
final class AuditScope: Sendable {
    struct Fields {
        var actor = AuditEvent.Actor()
        var target: AuditEvent.Target?
        var decision: AuditEvent.Decision?
        var hashed: [String: String]?
        var bytes: UInt64?
    }
    let requestID: String
    let action: String
    let sourceIP: String
    /// A read: one `access` entry, written once the answer is known.
    let readOnly: Bool
    let fields: Mutex<Fields>

    static let requestBase = UInt64.random(in: 0...UInt64.max)
    static let requestCounter = Atomic<UInt64>(0)

    init(action: String, sourceIP: String, target: AuditEvent.Target?, readOnly: Bool) {
        self.readOnly = readOnly
        // A random start per process, counted up: unique without a system call per request.
        let n = Self.requestCounter.add(1, ordering: .relaxed).newValue &+ Self.requestBase
        requestID = String(unsafeUninitializedCapacity: 16) { out in
            for i in 0..<16 { out[i] = Hex.digit(UInt8((n >> (60 - 4 * UInt64(i))) & 0xF)) }
            return 16
        }
        self.action = action
        self.sourceIP = sourceIP
        fields = Mutex(Fields(target: target))
    }

    func event(phase: String, result: AuditEvent.Result? = nil) -> AuditEvent {
        fields.withLock { f in
            AuditEvent(
                phase: phase, requestID: requestID, action: action, actor: f.actor, sourceIP: sourceIP,
                target: f.target, decision: phase == "response" ? nil : f.decision,
                result: result.map {
                    var r = $0; r.bytes = r.bytes ?? f.bytes; return r
                },
                hashed: f.hashed)
        }
    }
}

extension AuditEvent {
    /// About the bytes the event holds in memory, for the sealed server's buffer.
    var approximateSize: Int {
        let strings = [
            requestID, action, actor.user, actor.tokenID, actor.certificate, sourceIP, target?.model, target?.file,
            target?.name, decision?.rule, result?.error,
        ]
        return strings.reduce(256) { $0 + ($1?.utf8.count ?? 0) } + (hashed?.count ?? 0) * 96
            + (target?.sha256?.count ?? 0) * 64
    }
}
