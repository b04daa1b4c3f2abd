import AsyncHTTPClient
import AuditLog
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

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
    /// Events kept while the receiver is away; beyond this the oldest are dropped (and counted).
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

/// Delivers audit events to one sink, in log order, without ever making a request wait: events
/// queue in memory (up to `capacity`; older ones are dropped beyond it, and counted), and a
/// background task writes them out, reconnecting with backoff when the receiver goes away. Events
/// written in the few seconds before a connection broke are sent again after reconnecting, so a
/// receiver restart loses nothing (it may see an event twice; each carries its `seq`).
final class AuditSink: Sendable {
    let configuration: AuditSinkConfiguration
    /// This host's name, as syslog headers carry it.
    let hostname: [UInt8]
    /// The events waiting, already rendered as this sink sends them (lines, syslog frames or
    /// webhook bodies), back to back in one buffer: no object per event outlives the request that
    /// logged it. An event freed on the sink's thread, into the arena of the event loop that made
    /// it, contended with that loop's own allocations (glibc arena lock waits, seen under load).
    struct State {
        /// The rendered bytes from stream position `base` on; those before `head` are sent.
        var pending: [UInt8] = []
        var base = 0
        var head = 0
        /// Where each waiting event ends, as a stream position.
        var ends = FIFO<Int>()
        var dropped = 0
        var delivered = 0
        var lastError: String?
        /// Dropping since the queue last drained (one alert per episode).
        var dropping = false
        /// When the latest batch was taken.
        var batchTaken: ContinuousClock.Instant?

        /// Lets go of sent bytes once they are most of the buffer (or all of it).
        mutating func compact() {
            let spent = head - base
            guard spent == pending.count || (spent > 1 << 16 && spent * 2 > pending.count) else { return }
            pending.removeFirst(spent)
            base = head
        }
    }
    let state = Mutex(State())
    /// Told when events start being dropped (once until the queue drains).
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

    var name: String {
        configuration.address ?? configuration.path ?? configuration.url ?? configuration.type.rawValue
    }

    /// Queues `events` (rendered), dropping the oldest beyond `capacity`.
    func offer(_ events: [LoggedEvent]) {
        let onlyAlerts = configuration.onlyAlerts
        let startedDropping: Int? = state.withLock { s in
            for entry in events where !onlyAlerts || entry.phase == "alert" {
                render(entry, to: &s.pending)
                s.ends.append(contentsOf: CollectionOfOne(s.base + s.pending.count))
            }
            let excess = s.ends.count - configuration.capacity
            guard excess > 0 else { return nil }
            s.head = s.ends.elements.dropFirst(excess - 1).first!
            s.ends.removeFirst(excess)
            s.compact()
            s.dropped += excess
            defer { s.dropping = true }
            return s.dropping ? nil : excess
        }
        if let startedDropping { onDrop?(startedDropping) }
    }

    var counters: (queued: Int, dropped: Int, delivered: Int) {
        state.withLock { ($0.ends.count, $0.dropped, $0.delivered) }
    }

    /// Appends `entry` as this sink sends it: a line (file), a body (webhook), a syslog frame.
    func render(_ entry: LoggedEvent, to out: inout [UInt8]) {
        switch configuration.type {
        case .file:
            configuration.format.append(entry, to: &out)
            out.append(0x0A)
        case .webhook:
            configuration.format.append(entry, to: &out)
        case .syslog:
            configuration.format.appendSyslogFrame(entry, hostname: hostname, to: &out)
        }
    }

    /// Consecutive waiting events, rendered: `ends[i]` is where the i-th ends in `bytes`. One
    /// buffer, copied once from the queue, which the connection writes and its resend window keeps.
    struct Batch {
        var bytes: ByteBuffer
        var ends: [Int]
        /// The stream position of the batch's first byte (see `sent(through:)`).
        var start: Int
        var count: Int { ends.count }
        /// The stream position after the batch.
        var end: Int { start + (ends.last ?? 0) }
        /// The i-th event's bytes.
        func event(_ i: Int) -> ByteBuffer {
            let start = i == 0 ? 0 : ends[i - 1]
            return bytes.getSlice(at: bytes.readerIndex + start, length: ends[i] - start)!
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

    /// Events per batch, at most.
    static let batchSize = 1000
    /// How long a sink lets events gather between batches, unless a whole batch is waiting.
    let batchInterval: Duration

    /// The next events to send (up to `batchSize`), waiting for some. A batch is taken once
    /// `batchInterval` has passed since the previous one, or at once when a whole batch waits:
    /// a busy server's events leave in large batches, not in a trickle of small ones that each
    /// cost system calls and thread wake-ups. (Polling: cheap, and it ends with the task, which a
    /// wake-up stream shared across reconnections would not.)
    func next() async throws -> Batch {
        while true {
            let now = ContinuousClock.now
            let (batch, wait): (Batch?, Duration) = state.withLock { s in
                guard s.ends.count > 0 else { return (nil, batchInterval) }
                let due = s.batchTaken.map { $0 + batchInterval } ?? now
                guard s.ends.count >= Self.batchSize || due <= now else { return (nil, due - now) }
                s.batchTaken = now
                let ends = s.ends.elements.prefix(Self.batchSize)
                let end = ends.last!
                var bytes = ByteBufferAllocator().buffer(capacity: end - s.head)
                s.pending.withUnsafeBytes {
                    bytes.writeBytes(UnsafeRawBufferPointer(rebasing: $0[(s.head - s.base)..<(end - s.base)]))
                }
                return (Batch(bytes: bytes, ends: ends.map { $0 - s.head }, start: s.head), .zero)
            }
            if let batch { return batch }
            try await Task.sleep(for: wait)
        }
    }

    /// Marks the events that end at stream position `end` or before delivered: they leave the
    /// queue (those dropped meanwhile, beyond `capacity`, are not counted twice).
    func sent(through end: Int) {
        state.withLock { s in
            let before = s.ends.count
            s.ends.removeFirst(while: { $0 <= end })
            s.head = max(s.head, end)
            s.compact()
            if s.ends.count == 0 { s.dropping = false }
            s.delivered += before - s.ends.count
            s.lastError = nil
        }
    }

    func runFile() async throws {
        let path = configuration.path!
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AuditLogError.unavailable("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        while !Task.isCancelled {
            let batch = try await next()
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
            sent(through: batch.end)
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
            while !Task.isCancelled {
                let batch = try await next()
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
                    sent(through: batch.start + batch.ends[i])
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

    /// Sends to a syslog receiver until the connection breaks; first, what `window` holds (the
    /// batches the last connection sent in its final seconds), which this connection's own window
    /// then takes over.
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
                    for again in window.batches(since: Date().addingTimeInterval(-Self.resendWindow)) {
                        try await outbound.write(again)
                        window.sent(again)
                    }
                    while !Task.isCancelled {
                        let batch = try await self.next()
                        try await outbound.write(batch.bytes)
                        self.sent(through: batch.end)
                        window.sent(batch.bytes)
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
        throw Closed()
    }
}

/// What a sink's connection sent lately (the last `AuditSink.resendWindow` seconds, at most
/// `AuditSink.resendBytes`), batch by batch, for sending again after the connection breaks.
final class SentWindow: Sendable {
    struct Batches {
        var batches = FIFO<(bytes: ByteBuffer, at: Date)>()
        var bytes = 0
    }
    let state = Mutex(Batches())

    func sent(_ batch: ByteBuffer, at now: Date = Date()) {
        state.withLock { s in
            s.batches.append(contentsOf: CollectionOfOne((batch, now)))
            s.bytes += batch.readableBytes
            s.batches.removeFirst(while: { sent in
                guard now.timeIntervalSince(sent.at) >= AuditSink.resendWindow || s.bytes > AuditSink.resendBytes
                else { return false }
                s.bytes -= sent.bytes.readableBytes
                return true
            })
        }
    }

    /// The batches sent at or after `cutoff`, oldest first; the window is emptied.
    func batches(since cutoff: Date) -> [ByteBuffer] {
        state.withLock { s in
            defer { s = Batches() }
            return s.batches.elements.filter { $0.at >= cutoff }.map(\.bytes)
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
