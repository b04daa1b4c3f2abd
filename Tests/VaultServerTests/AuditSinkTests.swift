import AuditLog
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import VaultServer

@Suite("Audit sinks: batches")
struct AuditSinkTests {
    func entries(_ range: Range<Int>) -> [LoggedEvent] {
        range.map { i in
            var event = AuditEvent(phase: "access", requestID: "r\(i)", action: "GET /v1/models", actor: .init())
            event.seq = i
            return LoggedEvent(event: event, bytes: Array("{\"seq\":\(i)}".utf8), keepEvent: false)
        }
    }

    /// The `seq` of each event in `batch` (lines `{"seq":N}`).
    func seqs(_ batch: AuditSink.Batch) -> [Int] {
        (0..<batch.count).map { i in
            let line = String(buffer: batch.event(i))
            return Int(line.dropFirst(7).prefix { $0.isNumber })!
        }
    }

    @Test("a batch leaves at once after a quiet spell, then gathers for the interval unless a whole batch waits")
    func batching() async throws {
        // A long interval: a test run that starves this task for tens of milliseconds must not
        // make "at once" look like "after the interval".
        let sink = AuditSink(.init(type: .file, path: "/dev/null"), batchInterval: .seconds(1))
        let clock = ContinuousClock()
        sink.offer(entries(0..<5))
        var started = clock.now
        var batch = try await sink.next()
        #expect(seqs(batch) == Array(0..<5))
        #expect(clock.now - started < sink.batchInterval)
        sink.sent(through: batch.end)

        // The next few wait for the interval to pass since the batch before.
        sink.offer(entries(5..<8))
        batch = try await sink.next()
        #expect(seqs(batch) == Array(5..<8))
        #expect(clock.now - started >= sink.batchInterval)
        sink.sent(through: batch.end)

        // A whole batch waiting goes at once, and no more than a batch at a time.
        sink.offer(entries(8..<(8 + AuditSink.batchSize + 10)))
        started = clock.now
        let full = try await sink.next()
        #expect(full.count == AuditSink.batchSize && seqs(full).first == 8)
        #expect(clock.now - started < sink.batchInterval)
        sink.sent(through: full.end)
        #expect(seqs(try await sink.next()) == Array((8 + AuditSink.batchSize)..<(18 + AuditSink.batchSize)))
        #expect(sink.counters.delivered == 8 + AuditSink.batchSize)
    }

    @Test("events wait rendered, one line each; beyond capacity the oldest are dropped and counted once")
    func capacity() async throws {
        let sink = AuditSink(.init(type: .file, path: "/dev/null", capacity: 3))
        let told = Mutex<[Int]>([])
        sink.onDrop = { n in told.withLock { $0.append(n) } }
        sink.offer(entries(0..<5))
        #expect(sink.counters.queued == 3 && sink.counters.dropped == 2)
        #expect(told.withLock { $0 } == [2])
        let batch = try await sink.next()
        #expect(seqs(batch) == [2, 3, 4])
        #expect(String(buffer: batch.bytes) == "{\"seq\":2}\n{\"seq\":3}\n{\"seq\":4}\n")
        // While that batch is out, three more push it out of the queue: dropped, and not
        // counted as delivered too when it arrives.
        sink.offer(entries(5..<8))
        #expect(sink.counters.dropped == 5)
        sink.sent(through: batch.end)
        #expect(sink.counters.queued == 3 && sink.counters.delivered == 0)
        let next = try await sink.next()
        #expect(seqs(next) == [5, 6, 7])
        sink.sent(through: next.start + next.ends[0])
        #expect(sink.counters.queued == 2 && sink.counters.delivered == 1)
        let last = try await sink.next()
        #expect(seqs(last) == [6, 7])
        // One alert per episode of drops: told once above, and again only after the queue drained.
        #expect(told.withLock { $0 } == [2])
        sink.sent(through: last.end)
        sink.offer(entries(8..<12))
        #expect(told.withLock { $0 } == [2, 1])
    }

    @Test("a webhook sink queues alerts only, each its own body")
    func webhookAlerts() async throws {
        let sink = AuditSink(.init(type: .webhook, url: "http://127.0.0.1:9/hook"))
        var alert = AuditEvent(phase: "alert", requestID: "", action: "alert.canary", actor: .init())
        alert.seq = 9
        sink.offer(entries(0..<3) + [LoggedEvent(event: alert, bytes: Array("{\"seq\":9}".utf8), keepEvent: false)])
        let batch = try await sink.next()
        #expect(batch.count == 1 && String(buffer: batch.event(0)) == "{\"seq\":9}")
    }
}
