import AsyncHTTPClient
import AuditLog
import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// One place audit events are sent besides the log itself (server config `audit.sinks`).
public struct AuditSinkConfiguration: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// RFC 5424 syslog over TCP, octet-counted (RFC 6587); with `tls`, over TLS (RFC 5425).
        case syslog
        /// One event per line, appended to a file.
        case file
        /// One HTTPS POST per event to `url` (alerts only, unless `alertsOnly` is false).
        case webhook
    }
    public var type: Kind
    /// `host:port` (syslog).
    public var address: String?
    public var tls: Bool = false
    /// PEM CA the receiver's certificate must chain to (syslog over TLS; default: the system's).
    public var ca: String?
    /// The file (file sink).
    public var path: String?
    public var format: SIEMFormat = .json
    /// How far behind the log the sink may fall while its receiver is away; beyond this it skips
    /// the oldest events (counted as dropped, with an alert).
    public var capacity: Int = 100_000
    /// The webhook's address (https; http only to a loopback address).
    public var url: String?
    /// Extra request headers for the webhook (an `Authorization` its receiver expects, say).
    public var headers: [String: String] = [:]
    /// Send alerts only (default for webhooks) or every event (default for the others).
    public var alertsOnly: Bool?

    public init(
        type: Kind, address: String? = nil, tls: Bool = false, ca: String? = nil, path: String? = nil,
        format: SIEMFormat = .json, capacity: Int = 100_000, url: String? = nil, headers: [String: String] = [:],
        alertsOnly: Bool? = nil
    ) {
        self.url = url
        self.headers = headers
        self.alertsOnly = alertsOnly
        self.type = type
        self.address = address
        self.tls = tls
        self.ca = ca
        self.path = path
        self.format = format
        self.capacity = capacity
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(Kind.self, forKey: .type)
        address = try c.decodeIfPresent(String.self, forKey: .address)
        tls = try c.decodeIfPresent(Bool.self, forKey: .tls) ?? false
        ca = try c.decodeIfPresent(String.self, forKey: .ca)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        format = try c.decodeIfPresent(SIEMFormat.self, forKey: .format) ?? .json
        capacity = try c.decodeIfPresent(Int.self, forKey: .capacity) ?? 100_000
        url = try c.decodeIfPresent(String.self, forKey: .url)
        headers = try c.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
        alertsOnly = try c.decodeIfPresent(Bool.self, forKey: .alertsOnly)
    }

    /// Whether only alerts go to this sink.
    var onlyAlerts: Bool { alertsOnly ?? (type == .webhook) }

    /// What is wrong with it, if anything.
    func problem() -> String? {
        switch type {
        case .syslog:
            guard let address, let colon = address.lastIndex(of: ":"),
                let port = Int(address[address.index(after: colon)...]),
                (1...65535).contains(port)
            else { return "a syslog sink needs \"address\": \"host:port\"" }
        case .file:
            guard path?.isEmpty == false else { return "a file sink needs \"path\"" }
        case .webhook:
            guard let url, let parsed = URL(string: url), let host = parsed.host, !host.isEmpty,
                parsed.scheme == "https"
                    || (parsed.scheme == "http" && ["127.0.0.1", "::1", "localhost"].contains(host))
            else { return "a webhook sink needs \"url\": \"https://HOST/PATH\" (http only to a loopback address)" }
        }
        return capacity >= 1 ? nil : "capacity must be at least 1"
    }
}

/// Delivers audit events to one sink, in log order, without ever making a request wait. A sink
/// reads the log's entries file, which is its queue: a request does nothing for the sinks, and a
/// sink whose receiver is away falls behind in the file, not in memory. A background task reads
/// what is durable, in batches, renders it as the sink sends it (lines, syslog frames or webhook
/// bodies) and writes it out, reconnecting with backoff when the receiver goes away. Events
/// written in the few seconds before a connection broke are sent again after reconnecting, so a
/// receiver restart loses nothing (it may see an event twice; each carries its `seq`). A sink
/// more than `capacity` events behind skips the oldest, counts them and raises an alert.
final class AuditSink: Sendable {
    let configuration: AuditSinkConfiguration
    /// This host's name, as syslog headers carry it.
    let hostname: [UInt8]

    /// A place in the log: where an entry starts in the entries file, and its `seq`.
    struct Position: Equatable {
        var offset: Int
        var seq: Int
    }

    struct State {
        /// The log, once it opens, its entries file open for reading, and the file that keeps
        /// this sink's place.
        var log: AuditLog?
        var file: Int32 = -1
        var place: Int32 = -1
        /// The next entry to send.
        var next = Position(offset: 0, seq: 0)
        /// Every entry before this `seq` was delivered once (a resent one is not counted again).
        var deliveredBefore = 0
        var dropped = 0
        var delivered = 0
        var lastError: String?
        /// Dropping since the sink last caught up (one alert per episode).
        var dropping = false
        /// When the latest batch was taken.
        var batchTaken: ContinuousClock.Instant?
    }
    let state = Mutex(State())
    /// Told when events start being dropped (once until the sink catches up).
    nonisolated(unsafe) var onDrop: (@Sendable (Int) -> Void)?
    /// How long after writing an event it is still sent again if the connection breaks…
    static let resendWindow: TimeInterval = 5
    /// …up to this many bytes of it: more than the two ends' socket buffers can hold unread
    /// (Linux allows at most 4 MiB to send and 6 MiB to receive by default).
    static let resendBytes = 16 << 20

    /// `batchInterval`: how long events gather between batches (tests lengthen it, so that "at
    /// once" and "after the interval" stay apart on a busy machine).
    init(_ configuration: AuditSinkConfiguration, batchInterval: Duration = .milliseconds(20)) {
        self.configuration = configuration
        self.batchInterval = batchInterval
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        hostname = Array(String(cString: name).utf8)
    }

    deinit {
        let files = state.withLock { [$0.file, $0.place] }
        for fd in files where fd >= 0 { close(fd) }
    }

    var name: String {
        configuration.address ?? configuration.path ?? configuration.url ?? configuration.type.rawValue
    }

    /// Starts reading `log` where this sink left off: its place is kept in the log's directory
    /// (`sinks/`, one file per sink, named by its type and destination), so a backlog the
    /// receiver has not taken yet survives a restart of the server. A sink without a place, or
    /// whose place is not an entry of this log (a log restored from a backup, say), starts at
    /// the log's end.
    func attach(_ log: AuditLog) throws {
        let path = log.layout.entries.path
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else {
            throw AuditLogError.unavailable("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        try? FileManager.default.createDirectory(
            at: log.layout.sinks, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let placePath = log.layout.sinks.appendingPathComponent(placeFileName).path
        let place = open(placePath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard place >= 0 else {
            close(file)
            throw AuditLogError.unavailable("cannot open \(placePath): \(String(cString: strerror(errno)))")
        }
        let end = log.end
        let start = Self.savedPlace(place).flatMap { Self.isEntry($0, of: file, end: end) ? $0 : nil }
        let next = start ?? Position(offset: end.offset, seq: end.seq)
        state.withLock { s in
            for fd in [s.file, s.place] where fd >= 0 { close(fd) }
            (s.log, s.file, s.place) = (log, file, place)
            (s.next, s.deliveredBefore) = (next, next.seq)
        }
        save(next, to: place)
    }

    /// The name of the file that keeps this sink's place: its type and a digest of its
    /// destination and format.
    var placeFileName: String {
        let digest = SHA256.hash(data: Array("\(configuration.type) \(name) \(configuration.format)".utf8))
        return "\(configuration.type.rawValue)-" + Hex.encode(Array(digest.prefix(8)))
    }

    /// A place as saved: the entry's offset and `seq`, in decimal, fixed width (each save
    /// overwrites the last in place).
    static func encode(_ p: Position) -> [UInt8] {
        var record = [UInt8](repeating: 0x30, count: 42)
        for (value, end) in [(p.offset, 20), (p.seq, 41)] {
            var rest = value
            for i in stride(from: end - 1, through: end - 20, by: -1) where rest > 0 {
                record[i] = UInt8(0x30 + rest % 10)
                rest /= 10
            }
        }
        (record[20], record[41]) = (0x20, 0x0A)
        return record
    }

    func save(_ p: Position, to place: Int32) {
        let record = Self.encode(p)
        // A save that fails or is torn only makes the sink start again at the log's end.
        _ = record.withUnsafeBytes { pwrite(place, $0.baseAddress!, $0.count, 0) }
    }

    static func savedPlace(_ place: Int32) -> Position? {
        var record = [UInt8](repeating: 0, count: 42)
        guard record.withUnsafeMutableBytes({ pread(place, $0.baseAddress!, $0.count, 0) }) == 42,
            record[20] == 0x20, record[41] == 0x0A,
            let offset = Int(String(decoding: record[0..<20], as: UTF8.self)),
            let seq = Int(String(decoding: record[21..<41], as: UTF8.self))
        else { return nil }
        return Position(offset: offset, seq: seq)
    }

    /// Whether entry `p.seq` starts at `p.offset` in the entries file (or `p` is the log's end).
    static func isEntry(_ p: Position, of file: Int32, end: (offset: Int, seq: Int)) -> Bool {
        if p.offset == end.offset { return p.seq == end.seq }
        guard p.offset >= 0, p.offset < end.offset, p.seq >= 0, p.seq < end.seq, p.offset == 0 || p.seq > 0 else {
            return false
        }
        // The line there, and the one before it ends just before it.
        var bytes = [UInt8](repeating: 0, count: min(64 << 10, end.offset - p.offset + 1))
        let at = max(0, p.offset - 1)
        let got = bytes.withUnsafeMutableBytes { pread(file, $0.baseAddress!, $0.count, off_t(at)) }
        guard got > 0 else { return false }
        let line = bytes[(p.offset - at)..<got]
        guard p.offset == 0 || bytes[0] == 0x0A, let newline = line.firstIndex(of: 0x0A) else { return false }
        return LoggedEvent(line: line[..<newline])?.seq == p.seq
    }

    var counters: (queued: Int, dropped: Int, delivered: Int) {
        state.withLock { s in (max(0, (s.log?.size ?? 0) - s.next.seq), s.dropped, s.delivered) }
    }

    /// What became of a line of the log.
    enum Rendered { case sent, passedOver, unreadable }

    /// Appends the entry on `line` as this sink sends it: a line (file), a body (webhook), a
    /// syslog frame. The line's fields are read only when a syslog header or the alerts-only
    /// filter needs them; a JSON line otherwise goes out as the log wrote it.
    func render(_ line: ArraySlice<UInt8>, to out: inout [UInt8]) -> Rendered {
        let onlyAlerts = configuration.onlyAlerts
        if configuration.type == .syslog || onlyAlerts {
            guard let entry = LoggedEvent(line: line) else { return .unreadable }
            guard !onlyAlerts || entry.phase == "alert" else { return .passedOver }
            if configuration.type == .syslog {
                configuration.format.appendSyslogFrame(entry, hostname: hostname, to: &out)
                return .sent
            }
        }
        guard configuration.format.append(line: line, to: &out) else { return .unreadable }
        if configuration.type == .file { out.append(0x0A) }
        return .sent
    }

    /// Consecutive events, rendered in one buffer: `ends[i]` is where the i-th ends in `bytes`,
    /// `seqs[i]` its `seq` and `after[i]` the place in the log after it (entries the sink does
    /// not send, such as non-alerts for a webhook, are passed over in between).
    struct Batch {
        var bytes: ByteBuffer
        var ends: [Int] = []
        var seqs: [Int] = []
        var after: [Position] = []
        /// Where the batch starts in the log.
        var start: Position
        var count: Int { ends.count }
        /// The i-th event's bytes.
        func event(_ i: Int) -> ByteBuffer {
            let start = i == 0 ? 0 : ends[i - 1]
            return bytes.getSlice(at: bytes.readerIndex + start, length: ends[i] - start)!
        }
    }

    /// Events per batch, at most.
    static let batchSize = 1000
    /// How long a sink lets events gather between batches, unless a whole batch is waiting.
    let batchInterval: Duration

    /// What a sink's delivery task reads the log into and renders a batch in, kept from batch
    /// to batch (only that task uses it).
    final class Buffers: @unchecked Sendable {
        var read: [UInt8] = []
        var rendered: [UInt8] = []
    }

    /// What the next batch starts from: the file, the place, how far the file is durable, and
    /// how many of the oldest entries to skip (those beyond `capacity`).
    typealias Taken = (file: Int32, from: Position, durable: Int, skip: Int)

    /// The next events to send (up to `batchSize`), waiting for some. A batch is taken once
    /// `batchInterval` has passed since the previous one, or at once when a whole batch waits:
    /// a busy server's events leave in large batches, not in a trickle of small ones that each
    /// cost system calls and thread wake-ups. (Polling: cheap, and it ends with the task, which a
    /// wake-up stream shared across reconnections would not.)
    func next(_ buffers: Buffers = Buffers()) async throws -> Batch {
        while true {
            let now = ContinuousClock.now
            let (taken, wait): (Taken?, Duration) = state.withLock { s in
                guard let log = s.log else { return (nil, batchInterval) }
                let waiting = log.size - s.next.seq
                guard waiting > 0 else { return (nil, batchInterval) }
                let due = s.batchTaken.map { $0 + batchInterval } ?? now
                guard waiting >= Self.batchSize || waiting > configuration.capacity || due <= now else {
                    return (nil, due - now)
                }
                s.batchTaken = now
                return ((s.file, s.next, log.durableLength, max(0, waiting - configuration.capacity)), .zero)
            }
            guard let taken else {
                try await Task.sleep(for: wait)
                continue
            }
            var from = taken.from
            if taken.skip > 0 { from = try skip(taken.skip, from: from, to: taken.durable, taken.file, buffers) }
            if let batch = try read(from: from, to: taken.durable, taken.file, buffers) { return batch }
        }
    }

    /// Reads the entries file from `offset`, up to `durable` and at most `limit` bytes, into
    /// `buffers.read`; returns how many bytes it read. At once, on the sink's task: what a sink
    /// reads was written moments ago and is in the page cache (only a sink catching up on a long
    /// backlog may read from the disk, a megabyte at a time).
    func readFile(_ file: Int32, at offset: Int, upTo durable: Int, limit: Int, _ buffers: Buffers) throws -> Int {
        let count = min(limit, durable - offset)
        if buffers.read.count < count { buffers.read = [UInt8](repeating: 0, count: count) }
        var done = 0
        while done < count {
            let n = buffers.read.withUnsafeMutableBytes {
                pread(file, $0.baseAddress! + done, count - done, off_t(offset + done))
            }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let why = n < 0 ? String(cString: strerror(errno)) : "it is shorter than it was"
                throw AuditLogError.unavailable("the sink \(name) cannot read the audit log: \(why)")
            }
            done += n
        }
        return count
    }

    /// Where the next newline is in `buffers.read[start..<end]`, if any.
    static func newline(in buffers: Buffers, from start: Int, to end: Int) -> Int? {
        guard start < end else { return nil }
        return buffers.read.withUnsafeBytes { b in
            memchr(b.baseAddress! + start, 0x0A, end - start).map { b.baseAddress!.distance(to: UnsafeRawPointer($0)) }
        }
    }

    /// Reads and renders the events from `from` on (up to `batchSize`, entries this sink does
    /// not send passed over). Nil when it passed over every entry it read: the sink has moved on.
    func read(from: Position, to durable: Int, _ file: Int32, _ buffers: Buffers) throws -> Batch? {
        // Enough for a batch of ordinary entries; more only for a line longer than that.
        var limit = 1 << 20
        var got = try readFile(file, at: from.offset, upTo: durable, limit: limit, buffers)
        while Self.newline(in: buffers, from: 0, to: got) == nil, got < durable - from.offset {
            limit *= 4
            got = try readFile(file, at: from.offset, upTo: durable, limit: limit, buffers)
        }
        var batch = Batch(bytes: ByteBuffer(), start: from)
        buffers.rendered.removeAll(keepingCapacity: true)
        var (at, start, unreadable) = (from, 0, 0)
        while batch.count < Self.batchSize, let newline = Self.newline(in: buffers, from: start, to: got) {
            let line = buffers.read[start..<newline]
            let seq = at.seq
            (start, at) = (newline + 1, Position(offset: from.offset + newline + 1, seq: seq + 1))
            switch render(line, to: &buffers.rendered) {
            case .sent: break
            case .passedOver: continue
            case .unreadable:
                unreadable += 1
                continue
            }
            batch.ends.append(buffers.rendered.count)
            batch.seqs.append(seq)
            batch.after.append(at)
        }
        // The last event's successor is where reading stopped: the lines passed over after it are
        // not read (nor counted) again.
        if batch.count > 0 { batch.after[batch.count - 1] = at }
        batch.bytes = ByteBuffer(bytes: buffers.rendered)
        state.withLock { s in
            s.dropped += unreadable
            if batch.count == 0 { s.next = at }
        }
        return batch.count == 0 ? nil : batch
    }

    /// Passes over the `count` oldest waiting entries (those beyond `capacity`): counted as
    /// dropped, with an alert when an episode of drops starts. Returns where the sink goes on.
    func skip(_ count: Int, from: Position, to durable: Int, _ file: Int32, _ buffers: Buffers) throws -> Position {
        var (at, left) = (from, count)
        while left > 0, at.offset < durable {
            let got = try readFile(file, at: at.offset, upTo: durable, limit: 1 << 20, buffers)
            var start = 0
            while left > 0, let newline = Self.newline(in: buffers, from: start, to: got) {
                (start, left, at.seq) = (newline + 1, left - 1, at.seq + 1)
            }
            guard start > 0 else { break }
            at.offset += start
        }
        let skipped = at.seq - from.seq
        let startedDropping: Bool = state.withLock { s in
            s.next = at
            guard skipped > 0 else { return false }
            s.dropped += skipped
            defer { s.dropping = true }
            return !s.dropping
        }
        if startedDropping { onDrop?(skipped) }
        return at
    }

    /// Marks the batch's events up to the i-th delivered; the sink goes on after it. The place
    /// kept for a restart is `resumeAt` when given: where a syslog connection would go back to
    /// (TCP does not say what the receiver read), else where the sink goes on.
    func sent(_ batch: Batch, through i: Int, resumeAt: Position? = nil) {
        let place = state.withLock { s in
            s.next = batch.after[i]
            for seq in batch.seqs[...i] where seq >= s.deliveredBefore { s.delivered += 1 }
            s.deliveredBefore = max(s.deliveredBefore, batch.seqs[i] + 1)
            s.lastError = nil
            if let log = s.log, s.next.seq >= log.size { s.dropping = false }
            return s.place
        }
        save(resumeAt ?? batch.after[i], to: place)
    }

    /// Goes back to `position`, if it is before where the sink is (to send again what a broken
    /// connection may not have delivered).
    func rewind(to position: Position) {
        state.withLock { s in
            if position.seq < s.next.seq { s.next = position }
        }
    }

    /// Runs until cancelled.
    func run() async {
        var backoff: UInt64 = 100_000_000
        // What a broken syslog connection may not have delivered: sent first on the next one.
        let unconfirmed = SentWindow()
        while !Task.isCancelled {
            do {
                switch configuration.type {
                case .file: try await runFile()
                case .syslog: try await runSyslog(resending: unconfirmed)
                case .webhook: try await runWebhook()
                }
                backoff = 100_000_000
            } catch {
                state.withLock { $0.lastError = "\(error)" }
                try? await Task.sleep(nanoseconds: backoff)
                backoff = min(backoff * 2, 5_000_000_000)
            }
        }
    }

    func runFile() async throws {
        let path = configuration.path!
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AuditLogError.unavailable("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let buffers = Buffers()
        while !Task.isCancelled {
            let batch = try await next(buffers)
            let bytes = batch.bytes
            // On the thread pool: a slow disk must not hold up an event loop.
            try await blocking {
                var done = 0
                while done < bytes.readableBytes {
                    let n = bytes.withUnsafeReadableBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw AuditLogError.unavailable("cannot write \(path): \(String(cString: strerror(errno)))")
                    }
                    done += n
                }
            }
            sent(batch, through: batch.count - 1)
        }
    }

    /// Posts events one at a time, in order; one that is not accepted (2xx) is posted again.
    func runWebhook() async throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let ca = configuration.ca { tls.trustRoots = .file(ca) }
        let client = HTTPClient(
            eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton),
            configuration: .init(tlsConfiguration: tls, timeout: .init(connect: .seconds(5), read: .seconds(10))))
        do {
            let buffers = Buffers()
            while !Task.isCancelled {
                let batch = try await next(buffers)
                for i in batch.ends.indices {
                    var request = HTTPClientRequest(url: configuration.url!)
                    request.method = .POST
                    request.headers.add(
                        name: "Content-Type", value: configuration.format == .cef ? "text/plain" : "application/json")
                    request.headers.add(name: "User-Agent", value: "mvault/\(VaultAPI.version)")
                    for (name, value) in configuration.headers { request.headers.add(name: name, value: value) }
                    request.body = .bytes(batch.event(i))
                    let response = try await client.execute(request, timeout: .seconds(10))
                    _ = try? await response.body.collect(upTo: 64 << 10)
                    guard (200..<300).contains(response.status.code) else {
                        throw AuditLogError.unavailable("the webhook answered \(response.status)")
                    }
                    sent(batch, through: i)
                }
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the receiver closed the connection" }
    }

    /// Sends to a syslog receiver until the connection breaks; first, again, what the last
    /// connection sent in its final seconds (`window`), which this connection's own sends then
    /// replace.
    func runSyslog(resending window: SentWindow) async throws {
        let address = configuration.address!
        let colon = address.lastIndex(of: ":")!
        let host = String(address[..<colon])
        let port = Int(address[address.index(after: colon)...])!
        var tlsContext: NIOSSLContext?
        if configuration.tls {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let ca = configuration.ca { tls.trustRoots = .file(ca) }
            tlsContext = try NIOSSLContext(configuration: tls)
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        let handler = try NIOSSLClientHandler(
                            context: tlsContext, serverHostname: host.first?.isNumber == true ? nil : host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The receiver says nothing; its stream ending means it went away.
                group.addTask {
                    for try await _ in inbound {}
                    throw Closed()
                }
                group.addTask {
                    if let again = window.rewind(since: Date().addingTimeInterval(-Self.resendWindow)) {
                        self.rewind(to: again)
                    }
                    let buffers = Buffers()
                    while !Task.isCancelled {
                        let batch = try await self.next(buffers)
                        try await outbound.write(batch.bytes)
                        let resumeAt = window.sent(from: batch.start, bytes: batch.bytes.readableBytes)
                        self.sent(batch, through: batch.count - 1, resumeAt: resumeAt)
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
        throw Closed()
    }
}

/// Where the batches a sink's connection sent lately began (the last `AuditSink.resendWindow`
/// seconds, at most `AuditSink.resendBytes` of them), to go back to after the connection breaks.
final class SentWindow: Sendable {
    struct Batches {
        var batches = FIFO<(start: AuditSink.Position, bytes: Int, at: Date)>()
        var bytes = 0
    }
    let state = Mutex(Batches())

    /// Records a batch sent from `start`; returns where the oldest batch still in the window began.
    @discardableResult
    func sent(from start: AuditSink.Position, bytes: Int, at now: Date = Date()) -> AuditSink.Position? {
        state.withLock { s in
            s.batches.append(contentsOf: CollectionOfOne((start, bytes, now)))
            s.bytes += bytes
            s.batches.removeFirst(while: { sent in
                guard now.timeIntervalSince(sent.at) >= AuditSink.resendWindow || s.bytes > AuditSink.resendBytes
                else { return false }
                s.bytes -= sent.bytes
                return true
            })
            return s.batches.elements.first?.start
        }
    }

    /// Where the oldest batch sent at or after `cutoff` began; the window is emptied.
    func rewind(since cutoff: Date) -> AuditSink.Position? {
        state.withLock { s in
            defer { s = Batches() }
            return s.batches.elements.first { $0.at >= cutoff }?.start
        }
    }
}

/// A first-in, first-out list whose removals from the front move an index instead of the
/// elements (the storage is compacted once more than half of it is spent), so a sink's backlog
/// and resend window cost the same per event however long they grow.
struct FIFO<Element> {
    private var items: [Element] = []
    private var head = 0

    var count: Int { items.count - head }
    var elements: ArraySlice<Element> { items[head...] }

    mutating func append(contentsOf new: some Sequence<Element>) { items.append(contentsOf: new) }

    /// The first `n` (or all, if fewer).
    func prefix(_ n: Int) -> [Element] { Array(items[head..<min(items.count, head + n)]) }

    mutating func removeFirst(_ n: Int) {
        head += min(n, count)
        compact()
    }

    /// Removes elements from the front while `condition` holds.
    mutating func removeFirst(while condition: (Element) -> Bool) {
        while head < items.count, condition(items[head]) { head += 1 }
        compact()
    }

    private mutating func compact() {
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 4096, head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}
