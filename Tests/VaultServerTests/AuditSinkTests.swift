import AuditLog
import Foundation
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

    @Test("a batch leaves at once after a quiet spell, then gathers for the interval unless a whole batch waits")
    func batching() async throws {
        let sink = AuditSink(.init(type: .file, path: "/dev/null"))
        let clock = ContinuousClock()
        sink.offer(entries(0..<5))
        var started = clock.now
        #expect(try await sink.next().map(\.seq) == Array(0..<5))
        #expect(clock.now - started < AuditSink.batchInterval)
        sink.sent(5)

        // The next few wait for the interval to pass since the batch before.
        sink.offer(entries(5..<8))
        #expect(try await sink.next().map(\.seq) == Array(5..<8))
        #expect(clock.now - started >= AuditSink.batchInterval)
        sink.sent(3)

        // A whole batch waiting goes at once, and no more than a batch at a time.
        sink.offer(entries(8..<(8 + AuditSink.batchSize + 10)))
        started = clock.now
        let full = try await sink.next()
        #expect(full.count == AuditSink.batchSize && full.first?.seq == 8)
        #expect(clock.now - started < AuditSink.batchInterval)
        sink.sent(full.count)
        #expect(try await sink.next().map(\.seq) == Array((8 + AuditSink.batchSize)..<(18 + AuditSink.batchSize)))
        #expect(sink.counters.delivered == 8 + AuditSink.batchSize)
    }
}
