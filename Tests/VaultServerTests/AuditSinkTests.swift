import AuditLog
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import VaultServer

@Suite("Audit sinks: batches")
struct AuditSinkTests {
    /// A log in a fresh directory, with `sink` reading it from its start.
    struct Fixture {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mvault-sink-\(UUID().uuidString)")
        let log: AuditLog

        init(_ sink: AuditSink) throws {
            log = try AuditLog(
                layout: AuditLogLayout(directory: root.appendingPathComponent("audit")), origin: "test/audit",
                key: try CheckpointKey(name: "test/audit", seed: [UInt8](repeating: 1, count: 32)),
                checkpointSeconds: 3600, inlineSyncNanos: Int.max)
            try sink.attach(log)
        }

        /// Appends events `range` (`seq` as the request id); the alerts among them at `alerts`.
        func append(_ range: Range<Int>, alerts: Set<Int> = []) async throws {
            for i in range {
                _ = try await log.append(
                    AuditEvent(
                        phase: alerts.contains(i) ? "alert" : "access", requestID: "\(i)", action: "GET /v1/models",
                        actor: .init()))
            }
        }

        /// The log's lines `range`, each with its newline.
        func lines(_ range: Range<Int>) throws -> String {
            let all = try String(contentsOf: log.layout.entries, encoding: .utf8).split(separator: "\n")
            return all[range].map { $0 + "\n" }.joined()
        }

        func cleanup() { try? FileManager.default.removeItem(at: root) }
    }

    @Test("a batch leaves at once after a quiet spell, then gathers for the interval unless a whole batch waits")
    func batching() async throws {
        // A long interval: a test run that starves this task for tens of milliseconds must not
        // make "at once" look like "after the interval".
        let sink = AuditSink(.init(type: .file, path: "/dev/null"), batchInterval: .seconds(1))
        let f = try Fixture(sink)
        defer { f.cleanup() }
        let clock = ContinuousClock()
        try await f.append(0..<5)
        var started = clock.now
        var batch = try await sink.next()
        #expect(batch.seqs == Array(0..<5))
        #expect(String(buffer: batch.bytes) == (try f.lines(0..<5)))
        #expect(clock.now - started < sink.batchInterval)
        sink.sent(batch, through: batch.count - 1)

        // The next few wait for the interval to pass since the batch before.
        try await f.append(5..<8)
        batch = try await sink.next()
        #expect(batch.seqs == Array(5..<8))
        #expect(clock.now - started >= sink.batchInterval)
        sink.sent(batch, through: batch.count - 1)

        // A whole batch waiting goes at once, and no more than a batch at a time.
        try await f.append(8..<(8 + AuditSink.batchSize + 10))
        started = clock.now
        let full = try await sink.next()
        #expect(full.count == AuditSink.batchSize && full.seqs.first == 8)
        #expect(clock.now - started < sink.batchInterval)
        sink.sent(full, through: full.count - 1)
        #expect(try await sink.next().seqs == Array((8 + AuditSink.batchSize)..<(18 + AuditSink.batchSize)))
        #expect(sink.counters.delivered == 8 + AuditSink.batchSize)
        #expect(sink.counters.queued == 10)
    }

    @Test("a sink sends what the log appends after it attached; beyond capacity the oldest are skipped and counted")
    func capacity() async throws {
        let sink = AuditSink(.init(type: .file, path: "/dev/null", capacity: 3))
        let told = Mutex<[Int]>([])
        sink.onDrop = { n in told.withLock { $0.append(n) } }
        let f = try Fixture(sink)
        defer { f.cleanup() }
        try await f.append(0..<5)
        #expect(sink.counters.queued == 5 && sink.counters.dropped == 0)
        let batch = try await sink.next()
        #expect(batch.seqs == [2, 3, 4])
        #expect(String(buffer: batch.bytes) == (try f.lines(2..<5)))
        #expect(sink.counters.dropped == 2 && told.withLock { $0 } == [2])
        // While that batch is out, five more: the batch still arrives; two of the five are skipped
        // when the sink reads on, without a second alert (the sink never caught up in between).
        try await f.append(5..<10)
        sink.sent(batch, through: 0)
        #expect(sink.counters.queued == 7 && sink.counters.delivered == 1)
        sink.sent(batch, through: 2)
        #expect(sink.counters.queued == 5 && sink.counters.delivered == 3)
        let next = try await sink.next()
        #expect(next.seqs == [7, 8, 9] && sink.counters.dropped == 4 && told.withLock { $0 } == [2])
        sink.sent(next, through: 2)
        #expect(sink.counters.queued == 0 && sink.counters.delivered == 6)
        // Caught up: the next overflow is a new episode, and alerts again.
        try await f.append(10..<14)
        #expect(try await sink.next().seqs == [11, 12, 13])
        #expect(told.withLock { $0 } == [2, 1])
    }

    @Test("a skip that finds nothing to pass over drops nothing and keeps the next episode's alert")
    func skipOfNothing() async throws {
        let sink = AuditSink(.init(type: .file, path: "/dev/null", capacity: 3))
        let told = Mutex<[Int]>([])
        sink.onDrop = { n in told.withLock { $0.append(n) } }
        let f = try Fixture(sink)
        defer { f.cleanup() }
        try await f.append(0..<2)
        let file = sink.state.withLock { $0.file }
        let end = AuditSink.Position(offset: f.log.durableLength, seq: 2)
        // Asked to skip where no line is left (the log's end): nothing moves, nothing is counted.
        let at = try sink.skip(5, from: end, to: f.log.durableLength, file, AuditSink.Buffers())
        #expect(at == end)
        #expect(sink.counters.dropped == 0 && told.withLock { $0 }.isEmpty)
        // A real overflow afterwards is a new episode and alerts.
        try await f.append(2..<7)
        #expect(try await sink.next().seqs == [4, 5, 6])
        #expect(sink.counters.dropped == 2 && told.withLock { $0 } == [2])
    }

    @Test("a webhook sink sends alerts only, each its own body; a rewound sink sends again, counted once")
    func webhookAlerts() async throws {
        let sink = AuditSink(.init(type: .webhook, url: "http://127.0.0.1:9/hook"))
        let f = try Fixture(sink)
        defer { f.cleanup() }
        try await f.append(0..<8, alerts: [3, 5])
        let batch = try await sink.next()
        #expect(batch.seqs == [3, 5])
        #expect(String(buffer: batch.event(0)) + "\n" == (try f.lines(3..<4)))
        #expect(String(buffer: batch.event(1)) + "\n" == (try f.lines(5..<6)))
        sink.sent(batch, through: 1)
        // The entries after the last alert were read and passed over with it.
        #expect(sink.counters.delivered == 2 && sink.counters.queued == 0)
        sink.rewind(to: batch.start)
        #expect(sink.counters.queued == 8)
        let again = try await sink.next()
        #expect(again.seqs == [3, 5])
        sink.sent(again, through: 1)
        #expect(sink.counters.delivered == 2 && sink.counters.queued == 0)
    }

    @Test(
        "a sink takes up where it left off after a restart; a place that is not an entry of the log starts it at the end"
    )
    func place() async throws {
        let configuration = AuditSinkConfiguration(type: .file, path: "/dev/null")
        let first = AuditSink(configuration)
        let f = try Fixture(first)
        defer { f.cleanup() }
        try await f.append(0..<6)
        let batch = try await first.next()
        first.sent(batch, through: 2)

        // The server restarts: its log opens again, and the same sink resumes at entry 3.
        let layout = f.log.layout
        f.log.close()  // one writer at a time: the old server's log is gone before the new one opens
        func reopened() throws -> AuditLog {
            try AuditLog(
                layout: layout, origin: "test/audit",
                key: try CheckpointKey(name: "test/audit", seed: [UInt8](repeating: 1, count: 32)),
                checkpointSeconds: 3600, inlineSyncNanos: Int.max)
        }
        let log = try reopened()
        let second = AuditSink(configuration)
        try second.attach(log)
        #expect(second.counters.queued == 3)
        #expect(try await second.next().seqs == [3, 4, 5])
        // Another destination has a place of its own: it starts at the end.
        let other = AuditSink(.init(type: .file, path: "/dev/zero"))
        try other.attach(log)
        #expect(other.counters.queued == 0)

        // A place as saved: both numbers in decimal, fixed width.
        #expect(
            String(decoding: AuditSink.encode(.init(offset: 1_234_567, seq: 45)), as: UTF8.self)
                == "00000000000001234567 00000000000000000045\n")
        // A place that is not where an entry starts, or names another entry, or is garbled.
        let placeFile = layout.sinks.appendingPathComponent(second.placeFileName)
        let line0 = try f.lines(0..<1).utf8.count
        for bad in [
            AuditSink.encode(.init(offset: line0 + 1, seq: 1)), AuditSink.encode(.init(offset: line0, seq: 2)),
            AuditSink.encode(.init(offset: 1 << 40, seq: 3)), Array("3 4\n".utf8), [],
        ] {
            try Data(bad).write(to: placeFile)
            let sink = AuditSink(configuration)
            try sink.attach(log)
            #expect(sink.counters.queued == 0, "\(String(decoding: bad, as: UTF8.self))")
        }
        // And one that is right.
        try Data(AuditSink.encode(.init(offset: line0, seq: 1))).write(to: placeFile)
        let sink = AuditSink(configuration)
        try sink.attach(log)
        #expect(try await sink.next().seqs == [1, 2, 3, 4, 5])
    }
}
