import Foundation
import Synchronization
import Testing

@testable import AuditLog

#if canImport(Glibc)
    import Glibc
#endif

struct LogFixture {
    let root: URL
    let layout: AuditLogLayout
    let key: CheckpointKey

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("mvault-audit-\(UUID().uuidString)")
        layout = AuditLogLayout(directory: root.appendingPathComponent("audit"))
        key = try CheckpointKey(name: "test/audit", seed: [UInt8](repeating: 1, count: 32))
    }

    /// `inlineSyncNanos`: `Int.max` has every request write its own entry, `-1` has the writer
    /// queue group-commit them all; the default picks by the device's sync time.
    func open(every: Int = 100, inlineSyncNanos: Int = 20_000) throws -> AuditLog {
        try AuditLog(
            layout: layout, origin: "test/audit", key: key, checkpointEvery: every, checkpointSeconds: 3600,
            inlineSyncNanos: inlineSyncNanos)
    }

    func event(_ i: Int) -> AuditEvent {
        AuditEvent(
            phase: "request", requestID: "r\(i)", action: "GET /v1/models/{namespace}/{name}",
            actor: .init(user: "alice"), sourceIP: "127.0.0.1", target: .init(model: "acme/m\(i % 7)"),
            decision: .init(allowed: i % 3 != 0, rule: "role consumer allows read on *"))
    }

    /// Appends `count` events, 50 at a time concurrently.
    func fill(_ log: AuditLog, _ count: Int) async throws -> [Int] {
        var seqs: [Int] = []
        for batch in stride(from: 0, to: count, by: 50) {
            seqs += try await withThrowingTaskGroup(of: Int.self) { group in
                for i in batch..<min(batch + 50, count) { group.addTask { try await log.append(self.event(i)) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        return seqs
    }

    var lines: [String] {
        get throws {
            try String(contentsOf: layout.entries, encoding: .utf8).split(separator: "\n").map(String.init)
        }
    }

    func write(_ lines: [String]) throws {
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: layout.entries)
    }

    func verify(external: String? = nil) throws -> AuditVerifier.Report {
        try AuditVerifier.verify(layout: layout, verifier: key.verifier, external: external)
    }

    func cleanup() { try? FileManager.default.removeItem(at: root) }
}

@Suite("Audit log: append, checkpoints, proofs and tamper detection")
struct AuditLogFileTests {
    @Test("a line's SIEM header fields are read without decoding it: seq, phase, time, decision, status")
    func headerFields() async throws {
        let f = try LogFixture()
        defer { f.cleanup() }
        let log = try f.open(inlineSyncNanos: Int.max)
        for i in 0..<5 { _ = try await log.append(f.event(i)) }
        var answered = f.event(5)
        answered.phase = "response"
        answered.decision = nil
        answered.result = .init(status: 403, bytes: 12, error: "a \"quoted\" } error, with \\ and {braces}")
        _ = try await log.append(answered)
        let lines = try f.lines
        let entries = try lines.map { try #require(LoggedEvent(line: Array($0.utf8)[...])) }
        let written = try lines.map { try AuditEvent.decode(Array($0.utf8)) }
        #expect(entries.map(\.seq) == Array(0..<6))
        #expect(entries.map(\.phase) == ["request", "request", "request", "request", "request", "response"])
        #expect(entries.map(\.allowed) == [false, true, true, false, true, nil])
        #expect(entries.map(\.status) == [nil, nil, nil, nil, nil, 403])
        #expect(
            entries.map { String(decoding: $0.timeText, as: UTF8.self) } == written.map { Timestamp.format($0.time) })
        #expect(entries.map(\.time) == written.map(\.time))
        #expect(entries.map { String(decoding: $0.bytes, as: UTF8.self) } == lines)
        #expect(entries.map(\.event) == written)

        // Anything else is not a line the log wrote: nil, whatever it holds.
        let line = Array(lines[5].utf8)
        for bad in [
            [], Array("{}".utf8), Array("[1]".utf8), Array(line.dropLast()), Array(line.dropFirst()), line + [0x20],
            Array(String(lines[5]).replacingOccurrences(of: "\"seq\":5", with: "\"seq\":\"5\"").utf8),
            Array(String(lines[5]).replacingOccurrences(of: "\"phase\"", with: "\"phase \"").utf8),
            Array(String(lines[5]).replacingOccurrences(of: "Z\"}", with: "\"}").utf8),
            Array(String(lines[5]).replacingOccurrences(of: "\"status\":403", with: "\"status\":4e3").utf8),
            Array("{\"seq\":99999999999999999999,\"phase\":\"a\",\"time\":\"2026-12-01T04:26:49.748Z\"}".utf8),
        ] {
            #expect(LoggedEvent(line: bad[...]) == nil, "\(String(decoding: bad, as: UTF8.self))")
        }
        for cut in 0..<line.count { _ = LoggedEvent(line: line[..<cut]) }
    }

    @Test("writes go to the group commit once most of the latest nine were slow: one stall moves nothing")
    func slowWrites() {
        var w = SlowWrites(window: 9)
        #expect(!w.mostlySlow)
        w.record(slow: true)
        for _ in 0..<8 { w.record(slow: false) }
        #expect(!w.mostlySlow && w.count == 1)
        for _ in 0..<4 { w.record(slow: true) }
        #expect(!w.mostlySlow && w.count == 4)  // the first stall has left the window
        w.record(slow: true)
        #expect(w.mostlySlow && w.count == 5)
        for _ in 0..<9 { w.record(slow: true) }
        #expect(w.mostlySlow && w.count == 9)
        for _ in 0..<5 { w.record(slow: false) }
        #expect(!w.mostlySlow && w.count == 4)
    }

    @Test(
        "concurrent appends get every sequence number once, durable, checkpointed every N; proofs verify",
        arguments: [Int.max, -1])
    func appendAndProve(inlineSyncNanos: Int) async throws {
        let f = try LogFixture()
        defer { f.cleanup() }
        let log = try f.open(inlineSyncNanos: inlineSyncNanos)
        let seqs = try await f.fill(log, 350)
        #expect(seqs.sorted() == Array(0..<350))
        #expect(log.size == 350)
        let lines = try f.lines
        #expect(lines.count == 350)
        let events = try lines.map { try AuditEvent.decode(Array($0.utf8)) }
        #expect(events.map(\.seq) == Array(0..<350))
        #expect(events[0].prev == "" && events[1].prev == hex(MerkleTree.leafHash(Array(lines[0].utf8))))
        #expect(lines[0].hasPrefix("{\"action\":\"GET /v1/models/{namespace}/{name}\",\"actor\":{\"user\":\"alice\"}"))
        // Checkpoints are signed on the writer queue, each of exactly N more entries however the
        // entries were written; `checkpointNow` runs after the ones queued and adds one of all 350.
        let note = await log.checkpointNow()
        #expect(
            f.layout.checkpointFiles().map(\.lastPathComponent)
                == [100, 200, 300, 350].map { String(format: "%020d.txt", $0) })
        let report = try f.verify()
        #expect(report.problem == nil && report.entries == 350 && report.checkpointsChecked == 4)

        let checkpoint = try Checkpoint.verify(note, key: f.key.verifier)
        #expect(checkpoint.size == 350)
        let (leaf, proof, root) = try log.inclusionProof(index: 123, size: 350)
        #expect(root == checkpoint.root && leaf == MerkleTree.leafHash(Array(lines[123].utf8)))
        #expect(MerkleTree.verifyInclusion(leaf: leaf, index: 123, size: 350, proof: proof, root: checkpoint.root))
        let old = try Checkpoint.verify(
            String(contentsOf: f.layout.checkpointFile(size: 200), encoding: .utf8), key: f.key.verifier)
        let consistency = try log.consistencyProof(from: 200, to: 350)
        #expect(
            MerkleTree.verifyConsistency(
                first: 200, second: 350, firstRoot: old.root, secondRoot: checkpoint.root, proof: consistency))
        #expect(throws: AuditLogError.self) { try log.inclusionProof(index: 400, size: 350) }

        // A second writer is refused while the first holds the log…
        #expect(throws: AuditLogError.self) { try f.open() }
        do {
            _ = try f.open()
        } catch {
            #expect("\(error)".contains("is open for writing in another process"), "\(error)")
        }
        // …and once it is closed, the log reopened carries on from where it was.
        log.close()
        await #expect(throws: AuditLogError.self) { try await log.append(f.event(0)) }
        let reopened = try f.open()
        #expect(reopened.size == 350)
        #expect(try await reopened.append(f.event(1)) == 350)
        #expect(try f.verify().problem == nil)
    }

    @Test(
        "a write that fails is refused with the reason, leaves nothing behind, and the log carries on once it can write",
        arguments: [Int.max, -1])
    func failedWrite(inlineSyncNanos: Int) async throws {
        let f = try LogFixture()
        defer { f.cleanup() }
        let log = try f.open(inlineSyncNanos: inlineSyncNanos)
        _ = try await f.fill(log, 10)
        let before = try Data(contentsOf: f.layout.entries)
        // The log's file swapped for /dev/full (every write fails with ENOSPC), then put back.
        let file = dup(log.fd)
        let full = open("/dev/full", O_WRONLY)
        #expect(file >= 0 && full >= 0 && dup2(full, log.fd) == log.fd)
        await #expect {
            try await log.append(f.event(10))
        } throws: { error in
            "\(error)".contains("cannot write \(f.layout.entries.path): No space left on device")
        }
        #expect(log.size == 10)
        #expect(dup2(file, log.fd) == log.fd)
        close(file)
        close(full)
        #expect(try Data(contentsOf: f.layout.entries) == before)
        #expect(try await log.append(f.event(11)) == 10)
        #expect(try f.lines.count == 11)
        #expect(try f.verify().problem == nil)
    }

    @Test(
        "verify names the first bad entry: edited, deleted, inserted, reordered, chain rewritten, truncated, rolled back, forged checkpoint"
    )
    func tampering() async throws {
        let f = try LogFixture()
        defer { f.cleanup() }
        let log = try f.open()
        _ = try await f.fill(log, 250)
        let saved = await log.checkpointNow()  // kept outside the vault, e.g. by the SIEM
        let original = try f.lines
        let snapshotAt200 = Array(original.prefix(200))
        func expectProblem(_ lines: [String], _ text: String, external: String? = nil) throws {
            try f.write(lines)
            let problem = try f.verify(external: external).problem
            #expect(problem?.contains(text) == true, "\(problem ?? "no problem found")")
            try f.write(original)
        }
        var lines = original
        // Entries are appended concurrently, so either decision may stand at 42: flip it.
        lines[42] =
            lines[42].contains("\"allowed\":false")
            ? lines[42].replacingOccurrences(of: "\"allowed\":false", with: "\"allowed\":true")
            : lines[42].replacingOccurrences(of: "\"allowed\":true", with: "\"allowed\":false")
        #expect(lines[42] != original[42])
        try expectProblem(lines, "entry 42 was edited: entry 43 records a different hash of it")
        lines = original
        lines.remove(at: 42)
        try expectProblem(lines, "entry 42 is missing or out of place")
        lines = original
        lines.insert(original[10], at: 42)
        try expectProblem(lines, "line 43 holds entry 10 where entry 42 belongs")
        lines = original
        lines.swapAt(42, 43)
        try expectProblem(lines, "entry 42 is missing or out of place: line 43 holds entry 43")
        lines = original
        lines[42] = "{\"not\": \"an event\"}"
        try expectProblem(lines, "entry 42 (line 43) is not a well-formed event")

        // Edit entry 42 and rewrite every later entry's chain: only the signed checkpoints see it.
        var rewritten = Array(original.prefix(42))
        var previous = MerkleTree.leafHash(Array(rewritten.last!.utf8))
        for (i, line) in original[42...].enumerated() {
            var event = try AuditEvent.decode(Array(line.utf8))
            if i == 0 { event.sourceIP = "10.9.9.9" }
            event.prev = hex(previous)
            let bytes = try event.encoded()
            previous = MerkleTree.leafHash(bytes)
            rewritten.append(String(decoding: bytes, as: UTF8.self))
        }
        try expectProblem(rewritten, "entries 0…99 are not the ones the checkpoint at 100 signed")

        try expectProblem(
            Array(original.prefix(220)), "the log was truncated: it holds 220 entries, but a checkpoint signed 250")

        // A rollback of the whole directory (entries and checkpoints) to an older state: only a
        // checkpoint saved elsewhere reveals it.
        let later = f.layout.checkpointFiles().filter { $0.lastPathComponent > String(format: "%020d.txt", 200) }
        let kept = try later.map { ($0, try Data(contentsOf: $0)) }
        for (file, _) in kept { try FileManager.default.removeItem(at: file) }
        try f.write(snapshotAt200)
        #expect(try f.verify().problem == nil)
        #expect(
            try f.verify(external: saved).problem?.contains(
                "rolled back or truncated: a checkpoint saved earlier covers 250 entries, the log has 200") == true)
        for (file, data) in kept { try data.write(to: file) }
        try f.write(original)
        #expect(try f.verify(external: saved).problem == nil)

        // A checkpoint edited on disk no longer verifies.
        let file = f.layout.checkpointFile(size: 100)
        let note = try String(contentsOf: file, encoding: .utf8)
        try Data(note.replacingOccurrences(of: "\n100\n", with: "\n101\n").utf8).write(to: file)
        #expect(try f.verify().problem?.contains("checkpoint \(file.lastPathComponent) is not valid") == true)
        // …and the server will not run on it.
        log.close()
        do {
            _ = try f.open()
            Issue.record("a log with a forged checkpoint was opened")
        } catch {
            #expect("\(error)".contains("is not valid (forged or damaged)"), "\(error)")
        }
        try Data(note.utf8).write(to: file)
    }

    @Test("logs long enough to be checked on both cores name the first bad entry, in either half")
    func tamperingInLongLogs() async throws {
        let f = try LogFixture()
        defer { f.cleanup() }
        let log = try f.open(every: 5000)
        _ = try await f.fill(log, 9000)
        let original = try f.lines
        #expect(try f.verify().problem == nil)
        for (edited, expected) in [(1000, "entry 1000 was edited"), (7000, "entry 7000 was edited")] {
            var lines = original
            lines[edited] = lines[edited].replacingOccurrences(of: "\"alice\"", with: "\"mallory\"")
            // A second, later break must not hide the first.
            lines[8500] = lines[8500].replacingOccurrences(of: "\"alice\"", with: "\"eve\"")
            try f.write(lines)
            let problem = try f.verify().problem
            #expect(problem?.contains(expected) == true, "\(problem ?? "no problem found")")
        }
        try f.write(original)
    }

    @Test("an incomplete last line (a write cut by a crash, never acknowledged) is dropped at open")
    func incompleteTail() async throws {
        let f = try LogFixture()
        defer { f.cleanup() }
        let log = try f.open()
        _ = try await f.fill(log, 10)
        log.close()
        let handle = try FileHandle(forWritingTo: f.layout.entries)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"action\":\"half".utf8))
        try handle.close()
        #expect(try f.verify().incompleteTail)
        let reopened = try f.open()
        #expect(reopened.size == 10)
        #expect(try await reopened.append(f.event(10)) == 10)
        let report = try f.verify()
        #expect(report.problem == nil && !report.incompleteTail && report.entries == 11)
    }

    @Test("repair keeps every entry that verifies, moves the rest aside, and records the cut")
    func repair() async throws {
        let f = try LogFixture()
        defer { f.cleanup() }
        let log = try f.open(every: 10)
        _ = try await f.fill(log, 25)
        _ = await log.checkpointNow()
        log.close()
        // A second writer's entries, interleaved: its entry 12 lands where entry 15 belongs.
        let past = f.layout.checkpointFiles().filter { $0.lastPathComponent > String(format: "%020d.txt", 15) }.count
        #expect(past >= 1)
        var lines = try f.lines
        lines.insert(lines[12], at: 15)
        try f.write(lines)
        let before = try f.verify()
        #expect(before.problem?.contains("line 16 holds entry 12 where entry 15 belongs") == true)
        let report = try AuditRepair.repair(layout: f.layout, verifier: f.key.verifier)
        #expect(report.kept == 15 && report.cutEntries == 11, "\(report)")
        #expect(report.cutCheckpoints == past, "the checkpoints past 15 sign entries that were cut")
        let cut = try String(contentsOf: try #require(report.cutFile), encoding: .utf8)
        #expect(cut == lines[15...].joined(separator: "\n") + "\n")
        let after = try f.verify()
        #expect(after.problem == nil && after.entries == 16, "\(after.problem ?? "")")
        let record = try AuditEvent.decode(Array(try f.lines[15].utf8))
        #expect(record.action == "audit.repair" && record.seq == 15)
        #expect(record.result?.error?.hasPrefix("cut 11 entries from 15 on and \(past) checkpoint(s)") == true)
        // The log opens and carries on; a repair of an intact log changes nothing.
        let reopened = try f.open(every: 10)
        #expect(try await reopened.append(f.event(99)) == 16)
        #expect(throws: AuditLogError.self) { try AuditRepair.repair(layout: f.layout, verifier: f.key.verifier) }
        reopened.close()
        let again = try AuditRepair.repair(layout: f.layout, verifier: f.key.verifier)
        #expect(again.problem == nil && again.cutEntries == 0 && again.kept == 17)
    }
}
