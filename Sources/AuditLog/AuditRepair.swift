import Foundation
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Recovers a log that fails verification (two writers interleaved their entries, a disk
/// returned garbage): it keeps the longest prefix that verifies against its chain and its
/// signed checkpoints, moves what follows into `cut-TIME.jsonl` (and the checkpoints past the
/// cut into `cut-TIME-checkpoints/`), and appends an `audit.repair` entry that says what was cut
/// and where it went. Nothing is deleted. Refuses while a server holds the log.
public enum AuditRepair {
    public struct Report: Sendable, Equatable {
        /// Entries kept (the verified prefix), and the entries and checkpoints moved aside.
        public var kept: Int
        public var cutEntries: Int
        public var cutCheckpoints: Int
        /// What was wrong, as `audit verify` said it; nil when the log was intact (nothing done).
        public var problem: String?
        /// Where the cut lines went.
        public var cutFile: URL?
    }

    public static func repair(layout: AuditLogLayout, verifier: CheckpointVerifier, now: Date = Date()) throws
        -> Report
    {
        let fd = open(layout.entries.path, O_RDWR | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else {
            throw AuditLogError.unavailable("cannot open \(layout.entries.path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        try AuditLog.lockExclusively(fd, layout: layout)
        let data = try Data(contentsOf: layout.entries)
        let checkpoints = layout.checkpointFiles().map {
            (url: $0, text: (try? String(contentsOf: $0, encoding: .utf8)) ?? "")
        }
        let first = AuditVerifier.check(
            entries: data, checkpoints: checkpoints.map { ($0.url.lastPathComponent, $0.text) }, verifier: verifier)
        guard let problem = first.problem else {
            return Report(kept: first.entries, cutEntries: 0, cutCheckpoints: 0, problem: nil, cutFile: nil)
        }
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast(data.last == 0x0A ? 1 : 0)
        // The longest prefix that verifies with the checkpoints inside it; each try is shorter.
        var keep = min(first.entries, lines.count)
        var checked = first
        while keep > 0 {
            let prefix = Data(lines.prefix(keep).joined(separator: [0x0A])) + [0x0A]
            let inside = checkpoints.filter { (try? Checkpoint.verify($0.text, key: verifier))?.size ?? .max <= keep }
            checked = AuditVerifier.check(
                entries: prefix, checkpoints: inside.map { ($0.url.lastPathComponent, $0.text) }, verifier: verifier)
            if checked.problem == nil, checked.entries == keep { break }
            keep = min(keep - 1, checked.entries)
        }
        let stamp = Timestamp.format(now).replacingOccurrences(of: ":", with: "")
        let cutFile = layout.directory.appendingPathComponent("cut-\(stamp).jsonl")
        let cutLines = lines.dropFirst(keep)
        var cut = Data(cutLines.joined(separator: [0x0A]))
        if !cutLines.isEmpty { cut.append(0x0A) }
        try cut.write(to: cutFile, options: [.withoutOverwriting])
        let aside = layout.directory.appendingPathComponent("cut-\(stamp)-checkpoints")
        var movedCheckpoints = 0
        for checkpoint in checkpoints {
            // A checkpoint past the cut, or one that does not verify, goes with what was cut.
            if let size = (try? Checkpoint.verify(checkpoint.text, key: verifier))?.size, size <= keep { continue }
            try FileManager.default.createDirectory(at: aside, withIntermediateDirectories: true)
            try FileManager.default.moveItem(
                at: checkpoint.url, to: aside.appendingPathComponent(checkpoint.url.lastPathComponent))
            movedCheckpoints += 1
        }
        let keptBytes = lines.prefix(keep).reduce(0) { $0 + $1.count + 1 }
        guard ftruncate(fd, off_t(keptBytes)) == 0 else {
            throw AuditLogError.unavailable("cannot cut \(layout.entries.path): \(String(cString: strerror(errno)))")
        }
        // The record of the cut, chained to the last kept entry (the next checkpoint signs it).
        var event = AuditEvent(
            time: now, phase: "alert", requestID: "", action: "audit.repair", actor: .init(),
            result: .init(
                status: 0,
                error:
                    "cut \(cutLines.count) entries from \(keep) on and \(movedCheckpoints) checkpoint(s) that did not verify (\(problem)); they are in \(cutFile.lastPathComponent)"
            ))
        event.seq = keep
        event.prev = keep == 0 ? "" : MerkleTree.hex(MerkleTree.leafHash(lines[lines.startIndex + keep - 1]))
        let line = try event.encoded() + [0x0A]
        let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
        guard written == line.count, fsync(fd) == 0 else {
            throw AuditLogError.unavailable("cannot write \(layout.entries.path): \(String(cString: strerror(errno)))")
        }
        return Report(
            kept: keep, cutEntries: cutLines.count, cutCheckpoints: movedCheckpoints, problem: problem, cutFile: cutFile
        )
    }
}
