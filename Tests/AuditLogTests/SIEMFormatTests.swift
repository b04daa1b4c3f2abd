import Foundation
import Testing

@testable import AuditLog

@Suite("Audit log: SIEM formats")
struct SIEMFormatTests {
    func logged(seq: Int, phase: String, allowed: Bool?, status: Int?) throws -> LoggedEvent {
        var event = AuditEvent(
            time: Date(timeIntervalSince1970: 1_764_518_400.25), phase: phase, requestID: "r1", action: "model.read",
            actor: .init(user: "ana"), sourceIP: "10.0.0.7",
            decision: allowed.map { .init(allowed: $0, rule: "grant g1") },
            result: status.map { .init(status: $0) })
        event.seq = seq
        return try #require(LoggedEvent(line: try event.encoded()[...]))
    }

    @Test("syslog frames: octet count, RFC 5424 header with severity, phase and seq, then the entry's own JSON")
    func syslogFrames() throws {
        var out: [UInt8] = Array("before".utf8)
        let entries = [
            try logged(seq: 7, phase: "access", allowed: true, status: 200),
            try logged(seq: 1_234_567, phase: "access", allowed: false, status: 403),
            try logged(seq: 0, phase: "alert", allowed: nil, status: 0),
        ]
        for entry in entries { SIEMFormat.json.appendSyslogFrame(entry, hostname: Array("vault-1".utf8), to: &out) }
        var rest = out[6...]
        #expect(String(decoding: out[..<6], as: UTF8.self) == "before")
        // authpriv (10): informational (6) when allowed, warning (4) when refused, critical (2) for alerts.
        let expected = [
            ("<86>", "access", "7", entries[0]), ("<84>", "access", "1234567", entries[1]),
            ("<82>", "alert", "0", entries[2]),
        ]
        for (pri, phase, seq, entry) in expected {
            let space = try #require(rest.firstIndex(of: UInt8(ascii: " ")))
            let length = try #require(Int(String(decoding: rest[..<space], as: UTF8.self)))
            let message = rest[(space + 1)..<(space + 1 + length)]
            #expect(
                String(decoding: message, as: UTF8.self)
                    == "\(pri)1 2025-11-30T16:00:00.250Z vault-1 mvault - \(phase) [mvault@32473 seq=\"\(seq)\"] "
                    + String(decoding: entry.bytes, as: UTF8.self))
            rest = rest[(space + 1 + length)...]
        }
        #expect(rest.isEmpty)
    }

    @Test("the octet count is right on both sides of a new digit")
    func octetCounts() throws {
        // Entries whose message is exactly `length` bytes, through their request id's length.
        func frame(requestID: Int) throws -> [UInt8] {
            var event = AuditEvent(
                phase: "access", requestID: String(repeating: "r", count: requestID), action: "a", actor: .init())
            event.seq = 7
            var out: [UInt8] = []
            SIEMFormat.json.appendSyslogFrame(
                try #require(LoggedEvent(line: try event.encoded()[...])), hostname: [0x68], to: &out)
            return out
        }
        let probe = try frame(requestID: 0)
        let header = probe.count - 4  // "NNN " before a message of NNN bytes
        for length in [999, 1000, 9999, 10000] {
            let out = try frame(requestID: length - header)
            #expect(out.starts(with: Array("\(length) <86>1 ".utf8)), "\(length)")
            #expect(out.count == "\(length) ".utf8.count + length)
        }
    }
}
