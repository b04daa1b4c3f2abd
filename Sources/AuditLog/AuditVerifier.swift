import Foundation
import Synchronization
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Recomputes an audit log from its entries and holds it against its own chain and its signed
/// checkpoints (and, for `verify`, one saved elsewhere), naming the first thing that is wrong.
public enum AuditVerifier {
    public struct Report: Sendable {
        /// Complete entries read.
        public var entries = 0
        /// Signed checkpoints whose signature and root were checked.
        public var checkpointsChecked = 0
        /// The first problem, in words; nil when the log is intact.
        public var problem: String?
        /// A final line without its newline: a write that never completed, so never acknowledged.
        public var incompleteTail = false
        public var latestCheckpoint: Checkpoint?
        var latestCheckpointText: String?
        var range = CompactRange()
        var leaves: [UInt8] = []
        var lastHash: [UInt8] = []
        /// Bytes of complete entries.
        var length = 0

        /// The leaf hashes of the first `count` entries read.
        public func leafHashes(_ count: Int) -> [MerkleTree.Hash] {
            (0..<min(count, entries)).map { Array(leaves[($0 * 32)..<($0 * 32 + 32)]) }
        }
    }

    /// Verifies the log in `layout` with the checkpoint key `verifier`; `external` is a signed
    /// checkpoint saved earlier outside the vault (a witness, the SIEM), which catches a rollback
    /// of the whole directory to an older state.
    public static func verify(layout: AuditLogLayout, verifier: CheckpointVerifier, external: String? = nil) throws
        -> Report
    {
        var report = try scan(layout: layout, verifier: verifier, repairTail: nil)
        guard report.problem == nil, let external else { return report }
        let saved: Checkpoint
        do {
            saved = try Checkpoint.verify(external, key: verifier)
        } catch {
            report.problem = "the checkpoint given to compare with is not valid: \(error)"
            return report
        }
        if saved.size > report.entries {
            report.problem =
                "the log was rolled back or truncated: a checkpoint saved earlier covers \(saved.size) entries, the log has \(report.entries)"
        } else if root(ofFirst: saved.size, report) != saved.root {
            report.problem =
                "the log's first \(saved.size) entries are not the ones the saved checkpoint signed: history was rewritten"
        }
        return report
    }

    static func root(ofFirst n: Int, _ report: Report) -> MerkleTree.Hash {
        MerkleTree.root((0..<n).map { Array(report.leaves[($0 * 32)..<($0 * 32 + 32)]) }[...])
    }

    /// Reads every entry and checkpoint. With `repairTail`, an incomplete final line is cut off
    /// through that descriptor (the server does this at start: it was never acknowledged).
    static func scan(layout: AuditLogLayout, verifier: CheckpointVerifier, repairTail: Int32?) throws -> Report {
        let data = (try? Data(contentsOf: layout.entries, options: .alwaysMapped)) ?? Data()
        let checkpoints = layout.checkpointFiles().map {
            (name: $0.lastPathComponent, text: (try? String(contentsOf: $0, encoding: .utf8)) ?? "")
        }
        var report = check(entries: data, checkpoints: checkpoints, verifier: verifier)
        if report.problem == nil, report.incompleteTail, let fd = repairTail {
            guard ftruncate(fd, off_t(report.length)) == 0 else {
                throw AuditLogError.unavailable(
                    "cannot cut an incomplete final entry: \(String(cString: strerror(errno)))")
            }
            report.incompleteTail = false
        }
        return report
    }

    /// Checks the bytes of an entries file against its chain and the signed `checkpoints`
    /// (file name, text) — untrusted input all of it; nothing here touches the disk.
    public static func check(
        entries data: Data, checkpoints files: [(name: String, text: String)], verifier: CheckpointVerifier
    ) -> Report {
        var report = Report()
        // Checkpoints first, so the entries can be held against them as they are read.
        var checkpoints: [Int: (Checkpoint, String)] = [:]
        for file in files {
            do {
                let checkpoint = try Checkpoint.verify(file.text, key: verifier)
                checkpoints[checkpoint.size] = (checkpoint, file.text)
            } catch {
                report.problem = "checkpoint \(file.name) is not valid (forged or damaged): \(error)"
                return report
            }
        }
        var problem: String?
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            // The lines, then their leaf hashes on every core, then the chain and the tree in order.
            var bounds: [Range<Int>] = []
            var start = 0
            while start < raw.count {
                guard let newline = Self.index(of: 0x0A, in: raw, from: start) else {
                    report.incompleteTail = true
                    break
                }
                bounds.append(start..<newline)
                start = newline + 1
            }
            var leaves = [UInt8](repeating: 0, count: bounds.count * 32)
            let workers = bounds.count < 4096 ? 1 : 2
            let (lines, input) = (bounds, SendableBytes(UnsafeMutableRawBufferPointer(mutating: raw)))
            // The first broken link each worker finds (the chain checks need every leaf, so they
            // run once all are hashed, again on every core).
            let issues = Mutex<[(index: Int, issue: String)]>([])
            leaves.withUnsafeMutableBytes { out in
                let out = SendableBytes(out)
                let share = (lines.count + workers - 1) / workers
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    for i in (worker * share)..<min(lines.count, (worker + 1) * share) {
                        let leaf = MerkleTree.leafDigest(UnsafeRawBufferPointer(rebasing: input.bytes[lines[i]]))
                        leaf.withUnsafeBytes {
                            out.bytes.baseAddress!.advanced(by: i * 32).copyMemory(from: $0.baseAddress!, byteCount: 32)
                        }
                    }
                }
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    for i in (worker * share)..<min(lines.count, (worker + 1) * share) {
                        let previous = UnsafeRawBufferPointer(
                            rebasing: out.bytes[(i == 0 ? 0 : (i - 1) * 32)..<(i * 32)])
                        if let issue = check(
                            UnsafeRawBufferPointer(rebasing: input.bytes[lines[i]]), index: i, previous: previous)
                        {
                            issues.withLock { $0.append((i, issue)) }
                            return
                        }
                    }
                }
            }
            let firstIssue = issues.withLock { $0.min { $0.index < $1.index } }
            for (index, bounds) in bounds.enumerated() {
                if let firstIssue, firstIssue.index == index {
                    problem = firstIssue.issue
                    return
                }
                report.range.append(
                    leaves.withUnsafeBytes {
                        InlineHash(UnsafeRawBufferPointer(rebasing: $0[(index * 32)..<(index * 32 + 32)]))
                    })
                report.lastHash = Array(leaves[(index * 32)..<(index * 32 + 32)])
                report.length = bounds.upperBound + 1
                if let (checkpoint, _) = checkpoints[index + 1] {
                    report.checkpointsChecked += 1
                    if report.range.root != checkpoint.root {
                        let before = checkpoints.keys.filter { $0 < index + 1 }.max() ?? 0
                        problem =
                            "entries \(before)…\(index) are not the ones the checkpoint at \(index + 1) signed: one of them was edited and the chain after it rewritten"
                        return
                    }
                }
            }
            report.leaves = leaves
        }
        report.entries = report.range.size
        if let problem {
            report.problem = problem
            return report
        }
        if let largest = checkpoints.keys.max() {
            report.latestCheckpoint = checkpoints[largest]!.0
            report.latestCheckpointText = checkpoints[largest]!.1
            if largest > report.entries {
                report.problem =
                    "the log was truncated: it holds \(report.entries) entries, but a checkpoint signed \(largest)"
            }
        }
        return report
    }

    /// The chain checks of entry `index`: its `seq` and its `prev` (read straight from the
    /// canonical JSON, which sorts keys: both are top-level and never first).
    static func check(_ line: UnsafeRawBufferPointer, index: Int, previous: UnsafeRawBufferPointer) -> String? {
        let lineNumber = index + 1
        guard let seq = integer(after: Self.seqKey, in: line) else {
            return "entry \(index) (line \(lineNumber)) is not a well-formed event: it was edited or inserted"
        }
        if seq > index {
            return
                "entry \(index) is missing or out of place: line \(lineNumber) holds entry \(seq) (entries were deleted or reordered)"
        }
        if seq < index {
            return
                "line \(lineNumber) holds entry \(seq) where entry \(index) belongs (an entry was inserted, repeated or moved)"
        }
        guard let prev = range(after: Self.prevKey, in: line) else {
            return "entry \(index) (line \(lineNumber)) is not a well-formed event: it was edited"
        }
        if !matchesHex(line, prev, previous) {
            return index == 0
                ? "entry 0 was edited (it names an entry before it)"
                : "entry \(index - 1) was edited: entry \(index) records a different hash of it"
        }
        return nil
    }

    static let seqKey = Array(",\"seq\":".utf8)
    static let prevKey = Array(",\"prev\":\"".utf8)

    /// The first `byte` in `buffer` at or after `from` (memchr).
    static func index(of byte: UInt8, in buffer: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < buffer.count, let base = buffer.baseAddress,
            let hit = memchr(base + from, Int32(byte), buffer.count - from)
        else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }

    static func find(_ key: [UInt8], in line: UnsafeRawBufferPointer) -> Int? {
        guard line.count >= key.count else { return nil }
        var i = 0
        // Candidates start at a comma; memchr finds them.
        while let at = index(of: key[0], in: line, from: i), at <= line.count - key.count {
            var j = 1
            while j < key.count && line[at + j] == key[j] { j += 1 }
            if j == key.count { return at + key.count }
            i = at + 1
        }
        return nil
    }

    static func integer(after key: [UInt8], in line: UnsafeRawBufferPointer) -> Int? {
        guard var i = find(key, in: line) else { return nil }
        var value = 0
        let start = i
        while i < line.count, line[i] >= 0x30, line[i] <= 0x39, i - start < 18 {
            value = value * 10 + Int(line[i] - 0x30)
            i += 1
        }
        return i > start ? value : nil
    }

    /// Where the string value after `key` lies (between its quotes).
    static func range(after key: [UInt8], in line: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let start = find(key, in: line) else { return nil }
        guard let end = index(of: 0x22, in: line, from: start) else { return nil }
        return start..<end
    }

    /// Whether `line[range]` is the lowercase hex of `bytes`.
    static func matchesHex(_ line: UnsafeRawBufferPointer, _ range: Range<Int>, _ bytes: UnsafeRawBufferPointer) -> Bool
    {
        guard range.count == bytes.count * 2 else { return false }
        for (i, b) in bytes.enumerated() {
            if line[range.lowerBound + 2 * i] != Hex.digit(b >> 4)
                || line[range.lowerBound + 2 * i + 1] != Hex.digit(b & 0x0F)
            {
                return false
            }
        }
        return true
    }
}

/// A buffer the hashing workers write disjoint parts of.
struct SendableBytes: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    init(_ bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }
}
