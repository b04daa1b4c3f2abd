import AuditLog
import Foundation
import VaultCore

/// A snapshot's manifest (docs/backup.md): the text of a signed note,
///
///     mvault-backup v1
///     snapshot 20261130T010203.042Z-9f3a
///     created 2026-11-30T01:02:03.042Z
///     <sha256 hex> <size> <path in the vault>
///     …
///
/// one line per file, sorted by path. A file's bytes are the object `objects/<2 hex>/<sha256>`.
public struct Manifest: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var sha256: String
        public var size: UInt64
        public var path: String

        public init(sha256: String, size: UInt64, path: String) {
            self.sha256 = sha256
            self.size = size
            self.path = path
        }

        public var object: String { Manifest.objectKey(sha256) }
    }

    public var snapshot: String
    public var created: Date
    public var entries: [Entry]

    public init(snapshot: String, created: Date, entries: [Entry]) {
        self.snapshot = snapshot
        self.created = created
        self.entries = entries.sorted { $0.path < $1.path }
    }

    public static func objectKey(_ sha256: String) -> String { "objects/\(sha256.prefix(2))/\(sha256)" }
    public static func key(_ snapshot: String) -> String { "snapshots/\(snapshot)" }

    public var totalBytes: UInt64 { entries.reduce(0) { $0 + $1.size } }

    public var text: String {
        var lines = [
            "mvault-backup v1", "snapshot \(snapshot)", "created \(Timestamp.format(created))",
        ]
        lines += entries.map { "\($0.sha256) \($0.size) \($0.path)" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses a manifest's text (its signature already checked).
    public init(text: String) throws(VaultError) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard lines.count >= 3, lines[0] == "mvault-backup v1", lines[1].hasPrefix("snapshot "),
            lines[2].hasPrefix("created "), let created = Timestamp.parse(String(lines[2].dropFirst(8)))
        else { throw .corrupt(file: "manifest", detail: "expected 'mvault-backup v1', a snapshot id and a time") }
        snapshot = String(lines[1].dropFirst(9))
        guard Self.validSnapshot(snapshot) else {
            throw .corrupt(file: "manifest", detail: "invalid snapshot id '\(snapshot)'")
        }
        self.created = created
        var entries: [Entry] = []
        for (n, line) in lines.dropFirst(3).enumerated() {
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count == 3, parts[0].count == 64, parts[0].allSatisfy(\.isHexDigit),
                parts[0].lowercased() == parts[0], let size = UInt64(parts[1]), Self.validPath(String(parts[2]))
            else { throw .corrupt(file: "manifest", detail: "line \(n + 4) is not 'SHA256 SIZE PATH'") }
            entries.append(Entry(sha256: String(parts[0]), size: size, path: String(parts[2])))
        }
        guard entries.map(\.path) == entries.map(\.path).sorted(), Set(entries.map(\.path)).count == entries.count
        else { throw .corrupt(file: "manifest", detail: "paths are not sorted and unique") }
        self.entries = entries
    }

    static func validSnapshot(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && !id.hasPrefix(".")
            && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
    }

    /// A relative path inside the vault, without `.`/`..` parts: restore writes nowhere else.
    static func validPath(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return !path.isEmpty && !path.hasPrefix("/")
            && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0") }
    }

    /// A new snapshot id: the time, and random bits so two at once do not collide.
    static func newSnapshotID(at date: Date) -> String {
        let stamp = Timestamp.format(date).filter { $0 != "-" && $0 != ":" }
        return stamp + "-" + String(format: "%04x", UInt16.random(in: 0...UInt16.max))
    }

    /// Checks `note`'s signature by `key` and parses it.
    public static func open(_ note: String, key: CheckpointVerifier) throws -> Manifest {
        let text = try SignedNote.open(note, key: key, what: "manifest")
        return try Manifest(text: text)
    }
}
