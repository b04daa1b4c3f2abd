import AuditLog
import Foundation
import Testing

@Suite("Audit log: committed test vectors (docs/audit.md)")
struct VectorTests {
    @Test("entries encode canonically, hash to the committed leaves and roots, and the checkpoint verifies")
    func vectors() throws {
        let url = try #require(
            Bundle.module.url(forResource: "audit-v1", withExtension: "txt", subdirectory: "Vectors"))
        let text = try String(contentsOf: url, encoding: .utf8)
        var fields: [(String, String)] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let colon = line.firstIndex(of: ":")!
            fields.append((String(line[..<colon]), String(line[line.index(colon, offsetBy: 2)...])))
        }
        func values(_ name: String) -> [String] { fields.filter { $0.0 == name }.map(\.1) }
        let seedHex = Array(values("seed")[0].utf8)
        let seed = stride(from: 0, to: seedHex.count, by: 2).map {
            UInt8(String(decoding: seedHex[$0..<($0 + 2)], as: UTF8.self), radix: 16)!
        }
        let key = try CheckpointKey(name: "mvault-audit", seed: seed)
        #expect(key.verifier.encoded == values("verifier")[0])

        var range = CompactRange()
        var previous: [UInt8] = []
        for (i, line) in values("entry").enumerated() {
            let event = try AuditEvent.decode(Array(line.utf8))
            #expect(event.seq == i)
            #expect(event.prev == hex(previous))
            // Swift's canonical encoding is byte for byte the one the vectors were written with.
            #expect(String(decoding: try event.encoded(), as: UTF8.self) == line, "entry \(i)")
            let leaf = MerkleTree.leafHash(Array(line.utf8))
            #expect(hex(leaf) == values("leaf")[i])
            range.append(leaf)
            #expect(hex(range.root) == values("root")[i])
            previous = leaf
        }
        let note = values("checkpoint").joined(separator: "\n") + "\n"
        let checkpoint = try Checkpoint.verify(note, key: key.verifier)
        #expect(checkpoint.size == 5 && checkpoint.origin == "mvault/vectors" && checkpoint.root == range.root)
        // swift-crypto hedges its Ed25519 signatures (fresh randomness), so a new note differs in
        // its signature only.
        let again = try checkpoint.signed(by: key)
        #expect(again.prefix(while: { $0 != "—" }) == note.prefix(while: { $0 != "—" }))
        #expect(try Checkpoint.verify(again, key: key.verifier) == checkpoint)
    }
}

@Suite("Audit log: event encoding")
struct EventEncodingTests {
    @Test("times are whole milliseconds that survive decoding and encoding again (found by AuditLogFuzz)")
    func timesRoundTrip() throws {
        for text in [
            "2026-11-29T22:00:01.249Z", "2026-11-29T22:00:01.001Z", "1999-12-31T23:59:59.999Z",
            "1013-11-29T22:00:04.000Z",
        ] {
            let line = #"{"action":"a","actor":{},"phase":"p","prev":"","requestID":"r","seq":0,"time":"\#(text)"}"#
            let event = try AuditEvent.decode(Array(line.utf8))
            #expect(String(decoding: try event.encoded(), as: UTF8.self) == line)
            #expect(try AuditEvent.decode(try event.encoded()) == event)
        }
        for bad in ["2026-02-31T00:00:00.000Z", "2026-11-29T22:00:01Z", "2026-11-29 22:00:01.000Z", "x"] {
            let line = #"{"action":"a","actor":{},"phase":"p","prev":"","requestID":"r","seq":0,"time":"\#(bad)"}"#
            #expect(throws: (any Error).self) { try AuditEvent.decode(Array(line.utf8)) }
        }
        let event = AuditEvent(
            time: Date(timeIntervalSince1970: 1_800_000_000.2496), phase: "p", requestID: "r", action: "a",
            actor: .init())
        #expect(String(decoding: try event.encoded(), as: UTF8.self).contains(#""time":"2027-01-15T08:00:00.250Z""#))
    }

    @Test("the canonical writer gives the bytes Foundation's sorted-key JSONEncoder gives, for random events")
    func sameAsJSONEncoder() throws {
        let reference = JSONEncoder()
        reference.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        reference.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(Timestamp.format(date))
        }
        var rng = SystemRandomNumberGenerator()
        let pieces = [
            "a", "Z", "/", "\"", "\\", "\n", "\r", "\t", "\u{8}", "\u{c}", "\u{1}", "\u{1f}", "\u{7f}", "é", "—", "🔑",
            "\u{2028}", " ",
        ]
        func text() -> String {
            (0..<Int.random(in: 0...6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
        }
        func maybe<T>(_ make: () -> T) -> T? { Bool.random(using: &rng) ? make() : nil }
        for _ in 0..<2000 {
            var event = AuditEvent(
                time: Date(
                    timeIntervalSince1970: Double(
                        Int64.random(in: -10_000_000_000_000...10_000_000_000_000, using: &rng)) / 1000),
                phase: text(), requestID: text(), action: text(),
                actor: .init(user: maybe(text), tokenID: maybe(text), certificate: maybe(text)), sourceIP: maybe(text),
                target: maybe {
                    .init(
                        model: maybe(text), version: maybe { Int.random(in: -5...1_000_000, using: &rng) },
                        file: maybe(text),
                        sha256: maybe { (0..<Int.random(in: 0...3, using: &rng)).map { _ in text() } },
                        name: maybe(text))
                },
                decision: maybe { .init(allowed: Bool.random(using: &rng), rule: text()) },
                result: maybe {
                    .init(
                        status: Int.random(in: 0...599, using: &rng),
                        bytes: maybe { UInt64.random(in: 0...UInt64.max, using: &rng) }, error: maybe(text))
                },
                hashed: maybe { Dictionary(uniqueKeysWithValues: (0..<3).map { ("\($0)" + text(), text()) }) })
            event.seq = Int.random(in: 0...Int.max, using: &rng)
            event.prev = text()
            let ours = try event.encoded()
            #expect(ours == Array(try reference.encode(event)), "\(String(decoding: ours, as: UTF8.self))")
            #expect(try AuditEvent.decode(ours) == event)
        }
    }
}
