import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where an audit log lives: `entries.jsonl` (one canonical JSON event per line, append-only),
/// `checkpoints/` (one signed checkpoint per file, named by tree size) and `verifier.key` (the
/// checkpoint verifier key, so anyone can verify without the keyring).
public struct AuditLogLayout: Sendable {
    public let directory: URL
    public init(directory: URL) { self.directory = directory }
    public var entries: URL { directory.appendingPathComponent("entries.jsonl") }
    public var checkpoints: URL { directory.appendingPathComponent("checkpoints") }
    public var verifierKey: URL { directory.appendingPathComponent("verifier.key") }
    /// Where each SIEM sink keeps its place in the entries (not part of the log, nor of backups).
    public var sinks: URL { directory.appendingPathComponent("sinks") }

    public func checkpointFile(size: Int) -> URL {
        checkpoints.appendingPathComponent(String(format: "%020d.txt", size))
    }

    /// Complete entries `start..<start + limit` as they are stored (one JSON object each).
    public func readEntries(start: Int, limit: Int) throws -> [[UInt8]] {
        let data = (try? Data(contentsOf: entries, options: .alwaysMapped)) ?? Data()
        var out: [[UInt8]] = []
        var index = 0
        var from = data.startIndex
        while from < data.endIndex, out.count < limit, let newline = data[from...].firstIndex(of: 0x0A) {
            if index >= start { out.append(Array(data[from..<newline])) }
            index += 1
            from = newline + 1
        }
        return out
    }

    /// The signed checkpoints on disk, smallest tree first.
    public func checkpointFiles() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []
        return names.filter { $0.hasSuffix(".txt") && !$0.hasPrefix(".") }.sorted().map {
            checkpoints.appendingPathComponent($0)
        }
    }
}

/// The append-only audit log of a running vault. An append returns only when its event is
/// durable, and throws when it cannot be made so (the caller refuses the request: fail closed).
/// The file is open with O_DSYNC: a write returns once it is on the device. How an entry gets
/// there depends on how long such a write takes, measured on every one: when writes take
/// microseconds (tmpfs, a device with a protected write cache), the request writes its own
/// entry, holding the log's tail (`tail`) for those few microseconds; when they take longer,
/// appends are group-committed by the writer queue — events that arrive while a batch is being
/// written go into the next one, each batch is written once, and no request thread waits on the
/// device. A signed checkpoint follows every `checkpointEvery` entries, and every
/// `checkpointSeconds` when entries came in since the last; both are signed on the writer queue.
public final class AuditLog: Sendable {
    public let layout: AuditLogLayout
    let origin: String
    let key: CheckpointKey
    /// Further signers of every checkpoint (the HSM's key), each adding its own signature line.
    let cosigners: [any NoteSigner]
    let checkpointEvery: Int
    let fd: Int32
    let queue = DispatchQueue(label: "mvault.audit.writer")
    nonisolated(unsafe) let timer: any DispatchSourceTimer

    struct Waiter {
        /// The event, encoded but for `prev` and `seq`.
        var entry: EncodedEvent
        var continuation: UnsafeContinuation<Int, any Error>
    }

    struct State {
        var pending: [Waiter] = []
        var flushing = false
        var checkpointed = 0
        var latestCheckpoint = ""
        var checkpointTime = Date()
    }
    let state: Mutex<State>

    /// The end of the log, owned by whoever writes (the writer queue, or a request writing its own
    /// entry): held while entries are encoded, written and synced.
    struct Tail {
        var range = CompactRange()
        /// Leaf hashes, 32 bytes each, for proofs.
        var leaves: [UInt8] = []
        /// The latest entry's leaf hash (nil before the first entry).
        var last: InlineHash?
        var length: off_t = 0
        /// The size of the latest checkpoint handed to the writer queue.
        var scheduled = 0
        /// The bytes of the batch being written (kept between batches).
        var buffer: [UInt8] = []
        /// Which of the latest writes took longer than `inlineSyncNanos` (see `syncIsSlow`).
        var slowWrites = SlowWrites(window: 9)
        /// Set by `close()`: the lock is given up, so nothing more may be written.
        var closed = false
    }
    let tail: Mutex<Tail>
    /// Entries so far (read without waiting for a write in progress).
    let count = Atomic<Int>(0)
    /// The length of the entries file up to the end of its latest durable entry.
    let durableBytes = Atomic<Int>(0)
    /// Whether most of the latest nine writes took longer than `inlineSyncNanos` — their median
    /// did (a write that the scheduler held up for a few milliseconds must not send the next
    /// hundreds of requests through the group commit, as a moving average did).
    let syncIsSlow = Atomic<Bool>(false)
    /// Writes at most this long let a request write its own entry.
    let inlineSyncNanos: Int

    /// Opens (or creates) the log in `layout.directory`, reading it back to rebuild the tree.
    /// - Throws: `AuditLogError.corrupt` when the entries do not match their latest checkpoint or
    ///   their own chain — the server will not run on a log it cannot vouch for.
    public init(
        layout: AuditLogLayout, origin: String, key: CheckpointKey, cosigners: [any NoteSigner] = [],
        checkpointEvery: Int = 1000, checkpointSeconds: Double = 60, inlineSyncNanos: Int = 20_000
    ) throws {
        self.inlineSyncNanos = inlineSyncNanos
        self.layout = layout
        self.origin = origin
        self.key = key
        self.cosigners = cosigners
        self.checkpointEvery = max(1, checkpointEvery)
        let fm = FileManager.default
        try fm.createDirectory(
            at: layout.checkpoints, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try Data((key.verifier.encoded + "\n").utf8).write(to: layout.verifierKey, options: .atomic)
        let fd = open(layout.entries.path, O_RDWR | O_CREAT | O_APPEND | O_DSYNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AuditLogError.unavailable("cannot open \(layout.entries.path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        var s = State()
        var t = Tail()
        do {
            try Self.lockExclusively(fd, layout: layout)
            let report = try AuditVerifier.scan(layout: layout, verifier: key.verifier, repairTail: fd)
            t.range = report.range
            t.leaves = report.leaves
            t.last = report.lastHash.isEmpty ? nil : InlineHash(report.lastHash)
            t.length = off_t(report.length)
            s.checkpointed = report.latestCheckpoint?.size ?? 0
            t.scheduled = s.checkpointed
            s.latestCheckpoint = report.latestCheckpointText ?? ""
            if let problem = report.problem { throw AuditLogError.corrupt(problem) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        t.buffer.reserveCapacity(4096)
        count.store(t.range.size, ordering: .relaxed)
        durableBytes.store(Int(t.length), ordering: .relaxed)
        state = Mutex(s)
        tail = Mutex(t)
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + checkpointSeconds, repeating: checkpointSeconds)
        timer.setEventHandler { [weak self] in self?.checkpointAll() }
        timer.resume()
    }

    deinit {
        timer.cancel()
        Glibc.close(fd)
    }

    /// Signs what is pending, then gives up the writer's lock: another `AuditLog` (in this
    /// process or another) may open the log after this; this one writes nothing more.
    public func close() {
        queue.sync { self.checkpointAll() }
        timer.cancel()
        tail.withLock { $0.closed = true }
        _ = flock(fd, LOCK_UN)
    }

    /// One writer at a time: two (say, two servers on one vault) would interleave their entries
    /// and break the chain. The lock goes with the descriptor, so it ends with the process.
    static func lockExclusively(_ fd: Int32, layout: AuditLogLayout) throws(AuditLogError) {
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if errno == EWOULDBLOCK {
                throw .unavailable(
                    "\(layout.entries.path) is open for writing in another process (another mvault server on this vault?); stop it first"
                )
            }
            throw .unavailable("cannot lock \(layout.entries.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Entries so far.
    public var size: Int { count.load(ordering: .acquiring) }

    /// How much of the entries file (`layout.entries`) holds durable entries: readers such as
    /// the SIEM sinks read up to here, never into a write in progress.
    public var durableLength: Int { durableBytes.load(ordering: .acquiring) }

    /// The end of the log: where the next entry will start in the entries file, and its `seq`.
    public var end: (offset: Int, seq: Int) { tail.withLock { (Int($0.length), $0.range.size) } }

    /// Appends `event` and returns its sequence number once it is on disk.
    public func append(_ event: AuditEvent) async throws -> Int {
        if let seq = try appendWithoutWaiting(event) { return seq }
        // Encoded here, by the caller, in parallel with others; the writer adds `prev` and `seq`.
        let entry = event.encodedParts()
        return try await withUnsafeThrowingContinuation { continuation in
            let start = state.withLock { s in
                s.pending.append(Waiter(entry: entry, continuation: continuation))
                defer { s.flushing = true }
                return !s.flushing
            }
            if start { queue.async { self.flush() } }
        }
    }

    /// Appends `event` at once, on the calling thread, and returns its sequence number once it is
    /// on disk — when the log's device syncs in `inlineSyncNanos` or less. Otherwise it returns nil
    /// without writing, and the caller awaits `append`, which groups concurrent appends into one
    /// sync. An asynchronous caller saves its trips through the executor by trying this first.
    public func appendWithoutWaiting(_ event: AuditEvent) throws -> Int? {
        guard !syncIsSlow.load(ordering: .relaxed) else { return nil }
        let entry = event.encodedParts()
        let (seq, due) = try tail.withLock { t throws(AuditLogError) in try write(CollectionOfOne(entry), to: &t) }
        if let due { queue.async { self.sign(due) } }
        return seq
    }

    /// Writes batches until none is waiting. Runs on the writer queue.
    func flush() {
        while true {
            let batch: [Waiter] = state.withLock { s in
                let batch = s.pending
                s.pending = []
                if batch.isEmpty { s.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let (first, due) = try tail.withLock { t throws(AuditLogError) in
                    try write(batch.lazy.map(\.entry), to: &t)
                }
                for (i, waiter) in batch.enumerated() { waiter.continuation.resume(returning: first + i) }
                if let due { sign(due) }
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
            }
        }
    }

    /// What a checkpoint signs: the first `size` entries, and their tree's root.
    typealias Due = (size: Int, root: MerkleTree.Hash)

    /// Writes `entries` as the log's next entries and syncs them; returns the first one's
    /// sequence number, and the checkpoint now due, if one is (`checkpointEvery` entries since the
    /// latest one scheduled; taken here, so its size and root are exact). The caller holds `tail`.
    /// When the write or the sync fails, nothing of the batch stays: the file goes back to its
    /// last good length and the tree to its last good state.
    func write(_ entries: some Collection<EncodedEvent>, to t: inout Tail) throws(AuditLogError) -> (
        first: Int, due: Due?
    ) {
        guard !t.closed else { throw .unavailable("the log was closed") }
        // The tree takes the batch's leaves only once it is durable: a copy of it kept to undo a
        // failed write would make every append copy its peaks.
        let (last, leafCount) = (t.last, t.leaves.count)
        let first = t.range.size
        var seq = first
        t.buffer.removeAll(keepingCapacity: true)
        for entry in entries {
            defer { seq += 1 }
            let start = t.buffer.count
            entry.write(to: &t.buffer, prev: t.last, seq: seq)
            let leaf = t.buffer.withUnsafeBytes {
                MerkleTree.leafDigest(UnsafeRawBufferPointer(rebasing: $0[start...]))
            }
            t.buffer.append(0x0A)
            leaf.withUnsafeBytes { t.leaves.append(contentsOf: $0) }
            t.last = leaf
        }
        do {
            t.slowWrites.record(slow: try writeAndSync(t.buffer) > inlineSyncNanos)
            syncIsSlow.store(t.slowWrites.mostlySlow, ordering: .relaxed)
        } catch {
            _ = ftruncate(fd, t.length)
            t.last = last
            t.leaves.removeSubrange(leafCount...)
            throw error
        }
        t.leaves.withUnsafeBytes { leaves in
            for at in stride(from: leafCount, to: leaves.count, by: 32) {
                t.range.append(InlineHash(UnsafeRawBufferPointer(rebasing: leaves[at..<(at + 32)])))
            }
        }
        t.length += off_t(t.buffer.count)
        // The bytes first: a reader that sees the new count finds its entries in the file.
        durableBytes.store(Int(t.length), ordering: .releasing)
        count.store(t.range.size, ordering: .releasing)
        guard t.range.size - t.scheduled >= checkpointEvery else { return (first, nil) }
        t.scheduled = t.range.size
        return (first, (t.range.size, t.range.root))
    }

    /// Writes `bytes` at the end of the file and returns how long that took, in nanoseconds; the
    /// file is open with O_DSYNC, so each write returns once its bytes and the file's new length
    /// are on the device (what `fdatasync` after it would do, in one system call instead of two).
    func writeAndSync(_ bytes: [UInt8]) throws(AuditLogError) -> Int {
        let start = DispatchTime.now().uptimeNanoseconds
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unavailable("cannot write \(layout.entries.path): \(String(cString: strerror(errno)))")
            }
            done += n
        }
        return Int(clamping: DispatchTime.now().uptimeNanoseconds - start)
    }

    /// Signs a checkpoint of every entry so far, if any came in since the latest. Runs on the
    /// writer queue (the timer's tick, `checkpointNow`).
    func checkpointAll() {
        let checkpointed = state.withLock { $0.checkpointed }
        let due: Due? = tail.withLock { t in
            guard t.range.size > checkpointed else { return nil }
            t.scheduled = max(t.scheduled, t.range.size)
            return (t.range.size, t.range.root)
        }
        if let due { sign(due) }
    }

    /// Signs and stores the checkpoint `due`, unless a larger one already is. Runs on the writer
    /// queue, so checkpoints are stored in order of size.
    func sign(_ due: Due) {
        guard state.withLock({ due.size > $0.checkpointed }) else { return }
        let (size, root) = due
        do {
            let note = try Checkpoint(origin: origin, size: size, root: root).signed(by: key, cosigners: cosigners)
            let file = layout.checkpointFile(size: size)
            let temporary = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).tmp")
            try Data(note.utf8).write(to: temporary)
            let tfd = open(temporary.path, O_RDONLY | O_CLOEXEC)
            if tfd >= 0 {
                fsync(tfd)
                Glibc.close(tfd)
            }
            guard rename(temporary.path, file.path) == 0 else { return }
            state.withLock { s in
                s.checkpointed = size
                s.latestCheckpoint = note
                s.checkpointTime = Date()
            }
        } catch {
            // The timer's next tick signs everything so far; verification works from older
            // checkpoints meanwhile.
        }
    }

    /// Signs a checkpoint of everything appended so far (waiting for batches in flight) and returns it.
    public func checkpointNow() async -> String {
        await withCheckedContinuation { continuation in
            queue.async {
                self.checkpointAll()
                continuation.resume(returning: self.state.withLock { $0.latestCheckpoint })
            }
        }
    }

    /// The latest signed checkpoint ("" before the first).
    public var latestCheckpoint: String { state.withLock { $0.latestCheckpoint } }

    /// Seconds since the latest checkpoint was signed.
    public var checkpointAge: Double { state.withLock { Date().timeIntervalSince($0.checkpointTime) } }

    func leafHashes(_ count: Int) -> [MerkleTree.Hash] {
        tail.withLock { t in
            (0..<max(0, min(count, t.range.size))).map { Array(t.leaves[($0 * 32)..<($0 * 32 + 32)]) }
        }
    }

    /// The audit path of entry `index` in the tree of the first `size` entries.
    public func inclusionProof(index: Int, size: Int) throws(AuditLogError) -> (
        leaf: MerkleTree.Hash, proof: [MerkleTree.Hash], root: MerkleTree.Hash
    ) {
        guard index >= 0, index < size, size <= self.size else {
            throw .badCheckpoint("no entry \(index) in a tree of \(size) (the log has \(self.size))")
        }
        let leaves = leafHashes(size)
        guard size <= leaves.count else {
            throw .badCheckpoint("no entry \(index) in a tree of \(size) (the log has \(self.size))")
        }
        return (leaves[index], MerkleTree.inclusionProof(index: index, leaves[...]), MerkleTree.root(leaves[...]))
    }

    /// The consistency proof from the first `first` entries to the first `second`.
    public func consistencyProof(from first: Int, to second: Int) throws(AuditLogError) -> [MerkleTree.Hash] {
        guard first >= 1, first <= second, second <= self.size else {
            throw .badCheckpoint("need 1 ≤ first ≤ second ≤ \(self.size)")
        }
        let leaves = leafHashes(second)
        guard second <= leaves.count else {
            throw .badCheckpoint("need 1 ≤ first ≤ second ≤ \(self.size)")
        }
        return MerkleTree.consistencyProof(from: first, leaves[...])
    }
}

/// Which of the latest `window` writes were slow: a ring of flags and their count, so that
/// "most were slow" (their median time is over the limit) costs nothing to keep up to date.
struct SlowWrites {
    var flags: [Bool]
    var next = 0
    var count = 0

    init(window: Int) { flags = Array(repeating: false, count: window) }

    mutating func record(slow: Bool) {
        if flags[next] { count -= 1 }
        if slow { count += 1 }
        flags[next] = slow
        next = (next + 1) % flags.count
    }

    /// Whether more than half of the latest `window` writes were slow.
    var mostlySlow: Bool { count > flags.count / 2 }
}
