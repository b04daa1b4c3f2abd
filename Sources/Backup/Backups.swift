import AuditLog
import Foundation
import Storage
import VaultCore
import VaultServices

#if canImport(Glibc)
    import Glibc
#endif

/// What a backup reads: a vault's directory, its open metadata store, its audit log directory
/// and its keys (the manifest is signed, so the vault must be unsealed).
public struct BackupSource: Sendable {
    public var layout: VaultLayout
    public var metadata: SQLiteMetadataStore
    public var auditDirectory: URL
    public var keys: any VaultKeys

    public init(layout: VaultLayout, metadata: SQLiteMetadataStore, auditDirectory: URL, keys: any VaultKeys) {
        self.layout = layout
        self.metadata = metadata
        self.auditDirectory = auditDirectory
        self.keys = keys
    }
}

/// Snapshots of a vault at a destination (docs/backup.md): every file is an object named by its
/// SHA-256, so an object already there is never copied again; a snapshot is its signed
/// manifest, written last, so one cut short by a crash is never listed.
public enum Backups {
    /// The vault's backup verifier key, kept at the destination by the first backup.
    public static let keyObject = "backup-key.txt"

    public struct CreateReport: Sendable {
        public var manifest: Manifest
        /// Objects written by this backup, and their bytes.
        public var copied: Int
        public var bytesCopied: UInt64
        /// Files whose object was already at the destination.
        public var reused: Int
    }

    /// Takes a snapshot of `source` while the vault keeps serving.
    public static func create(
        _ source: BackupSource, to destination: any BackupDestination, now: Date = Date(),
        progress: (@Sendable (String) -> Void)? = nil
    ) async throws -> CreateReport {
        try source.keys.requireUnsealed()
        let verifierText = try source.keys.backupVerifier()
        let verifier = try CheckpointVerifier(encoded: verifierText)
        if let stored = try await storedKey(destination) {
            guard stored.encoded == verifier.encoded else {
                throw VaultError.invalidArgument(
                    "\(destination.name) holds backups of another vault (key \(stored.encoded)); choose another destination"
                )
            }
        } else {
            try await destination.put(keyObject, data: Data((verifierText + "\n").utf8))
        }
        // What earlier snapshots recorded about the (immutable) blob files.
        var known: [String: Manifest.Entry] = [:]
        for manifest in try await snapshots(in: destination, key: verifier).manifests {
            for entry in manifest.entries where entry.path.hasPrefix("blobs/") { known[entry.path] = entry }
        }

        let snapshot = Manifest.newSnapshotID(at: now)
        let staging = source.layout.runDirectory.appendingPathComponent("backup-\(snapshot)")
        let fm = FileManager.default
        try fm.createDirectory(at: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(at: staging) }

        // The metadata first: the blobs it names were written before it, and are immutable.
        progress?("metadata")
        let metadataCopy = staging.appendingPathComponent("metadata.sqlite")
        let blobIDs = try source.metadata.backup(to: metadataCopy.path)
        var files: [(path: String, url: URL)] = [
            ("keyring.json", source.layout.keyringFile), ("metadata.sqlite", metadataCopy),
        ]
        files += try auditFiles(source.auditDirectory, staging: staging)
        for name in ["ca.crt", "server.crt", "server.key"] {
            let url = source.layout.tlsDirectory.appendingPathComponent(name)
            if fm.fileExists(atPath: url.path) { files.append(("tls/\(name)", url)) }
        }
        files += blobIDs.sorted().map {
            ("blobs/\($0.prefix(2))/\($0)", source.layout.root.appendingPathComponent("blobs/\($0.prefix(2))/\($0)"))
        }

        var entries: [Manifest.Entry] = []
        var report = CreateReport(
            manifest: Manifest(snapshot: snapshot, created: now, entries: []), copied: 0, bytesCopied: 0, reused: 0)
        for (n, file) in files.enumerated() {
            var st = stat()
            guard stat(file.url.path, &st) == 0 else {
                if file.path.hasPrefix("blobs/") {
                    throw VaultError.io(
                        path: file.url.path,
                        detail:
                            "the blob vanished during the backup (a version was removed meanwhile); run the backup again"
                    )
                }
                throw VaultError.inputMissing(path: file.url.path)
            }
            let size = UInt64(st.st_size)
            if let entry = known[file.path], entry.size == size, try await destination.size(of: entry.object) == size {
                entries.append(entry)
                report.reused += 1
                continue
            }
            progress?("\(n + 1)/\(files.count) \(file.path)")
            let digest = try sha256(of: file.url)
            let entry = Manifest.Entry(sha256: digest, size: size, path: file.path)
            if try await destination.size(of: entry.object) == size {
                report.reused += 1
            } else {
                try await destination.put(entry.object, file: file.url)
                report.copied += 1
                report.bytesCopied += size
            }
            entries.append(entry)
        }
        let manifest = Manifest(snapshot: snapshot, created: now, entries: entries)
        let note = try source.keys.signBackupManifest(manifest.text)
        try await destination.put(Manifest.key(snapshot), data: Data(note.utf8))
        report.manifest = manifest
        return report
    }

    /// The audit log's files: the entries as far as their last complete line (a line being
    /// appended is left for the next backup), the checkpoints and the verifier key.
    static func auditFiles(_ directory: URL, staging: URL) throws -> [(path: String, url: URL)] {
        let layout = AuditLogLayout(directory: directory)
        let fm = FileManager.default
        guard fm.fileExists(atPath: layout.entries.path) else { return [] }
        let copy = staging.appendingPathComponent("entries.jsonl")
        let data = try Data(contentsOf: layout.entries, options: .alwaysMapped)
        let end = data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? data.startIndex
        guard
            fm.createFile(
                atPath: copy.path, contents: data[data.startIndex..<end], attributes: [.posixPermissions: 0o600])
        else { throw VaultError.io(path: copy.path, detail: "cannot write") }
        var files: [(String, URL)] = [("audit/entries.jsonl", copy)]
        if fm.fileExists(atPath: layout.verifierKey.path) { files.append(("audit/verifier.key", layout.verifierKey)) }
        files += layout.checkpointFiles().map { ("audit/checkpoints/\($0.lastPathComponent)", $0) }
        return files
    }

    static func sha256(of url: URL) throws -> String {
        guard let input = FileHandle(forReadingAtPath: url.path) else {
            throw VaultError.io(path: url.path, detail: "cannot read")
        }
        defer { try? input.close() }
        var hasher = SHA256Stream()
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.hex()
    }

    /// The verifier key the first backup left at `destination`, if any.
    public static func storedKey(_ destination: any BackupDestination) async throws -> CheckpointVerifier? {
        guard try await destination.size(of: keyObject) != nil else { return nil }
        let text = String(decoding: try await destination.get(keyObject), as: UTF8.self)
        return try CheckpointVerifier(encoded: text)
    }

    /// The complete snapshots at `destination`, oldest first, and what is wrong with any other.
    public static func snapshots(in destination: any BackupDestination, key: CheckpointVerifier) async throws
        -> (manifests: [Manifest], problems: [String])
    {
        var manifests: [Manifest] = []
        var problems: [String] = []
        for name in try await destination.list(prefix: "snapshots/") {
            let note = String(decoding: try await destination.get(name), as: UTF8.self)
            do {
                let manifest = try Manifest.open(note, key: key)
                guard Manifest.key(manifest.snapshot) == name else {
                    throw VaultError.corrupt(file: name, detail: "it names snapshot \(manifest.snapshot)")
                }
                manifests.append(manifest)
            } catch {
                problems.append("\(name): \(error)")
            }
        }
        return (manifests.sorted { ($0.created, $0.snapshot) < ($1.created, $1.snapshot) }, problems)
    }

    public struct VerifyReport: Sendable {
        public var snapshots = 0
        public var objects = 0
        public var bytesRead: UInt64 = 0
        public var problems: [String] = []
    }

    /// Checks every manifest's signature and that every object it names is there with its size;
    /// with `readData`, reads every object back and checks its SHA-256.
    public static func verify(
        _ destination: any BackupDestination, key: CheckpointVerifier, readData: Bool,
        progress: (@Sendable (String) -> Void)? = nil
    ) async throws -> VerifyReport {
        var report = VerifyReport()
        let (manifests, problems) = try await snapshots(in: destination, key: key)
        report.snapshots = manifests.count
        report.problems = problems
        var objects: [String: (entry: Manifest.Entry, snapshot: String)] = [:]
        for manifest in manifests {
            for entry in manifest.entries where objects[entry.object] == nil {
                objects[entry.object] = (entry, manifest.snapshot)
            }
        }
        report.objects = objects.count
        for (n, (object, found)) in objects.sorted(by: { $0.key < $1.key }).enumerated() {
            let what = "object \(object) (\(found.entry.path) in snapshot \(found.snapshot))"
            guard let size = try await destination.size(of: object) else {
                report.problems.append("\(what) is missing")
                continue
            }
            guard size == found.entry.size else {
                report.problems.append("\(what) has \(size) bytes; the manifest says \(found.entry.size)")
                continue
            }
            guard readData else { continue }
            progress?("\(n + 1)/\(objects.count) \(found.entry.path)")
            let hasher = Hasher256()
            try await destination.read(object) { hasher.update($0) }
            report.bytesRead += size
            let digest = hasher.finish()
            if digest != found.entry.sha256 {
                report.problems.append("\(what) is damaged: its SHA-256 is \(digest)")
            }
        }
        return report
    }

    /// Builds a vault in `directory` (new or empty) from `snapshot` (default: the latest),
    /// checking every byte against the signed manifest. The vault appears whole or not at all.
    public static func restore(
        from destination: any BackupDestination, snapshot: String?, to directory: URL, key: CheckpointVerifier,
        progress: (@Sendable (String) -> Void)? = nil
    ) async throws -> Manifest {
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: directory.path), !entries.isEmpty {
            throw VaultError.invalidArgument("\(directory.path) is not empty; restore into a new or empty directory")
        }
        let (manifests, _) = try await snapshots(in: destination, key: key)
        guard let manifest = snapshot.map({ id in manifests.first { $0.snapshot == id } }) ?? manifests.last else {
            throw VaultError.invalidArgument(
                snapshot.map { "\(destination.name) has no complete snapshot \($0)" }
                    ?? "\(destination.name) has no complete snapshot")
        }
        let partial = directory.deletingLastPathComponent().appendingPathComponent(
            ".\(directory.lastPathComponent).restoring-\(UUID().uuidString.prefix(8))")
        try fm.createDirectory(at: partial, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        do {
            for (n, entry) in manifest.entries.enumerated() {
                progress?("\(n + 1)/\(manifest.entries.count) \(entry.path)")
                let target = partial.appendingPathComponent(entry.path)
                try fm.createDirectory(
                    at: target.deletingLastPathComponent(), withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700])
                let mode: mode_t = entry.path.hasSuffix(".crt") ? 0o644 : 0o600
                let fd = open(target.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
                guard fd >= 0 else { throw VaultError.io(path: target.path, detail: String(cString: strerror(errno))) }
                let out = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                let hasher = Hasher256()
                guard try await destination.size(of: entry.object) != nil else {
                    throw VaultError.integrity(file: entry.object, detail: "missing from \(destination.name)")
                }
                try await destination.read(entry.object) { piece in
                    hasher.update(piece)
                    try out.write(contentsOf: Data(piece))
                }
                try out.synchronize()
                let digest = hasher.finish()
                guard digest == entry.sha256, hasher.count == entry.size else {
                    throw VaultError.integrity(
                        file: entry.object, detail: "\(entry.path) does not match the manifest (SHA-256 \(digest))")
                }
            }
            for name in ["run", "tmp"] {
                try fm.createDirectory(
                    at: partial.appendingPathComponent(name), withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700])
            }
            if fm.fileExists(atPath: directory.path) { try fm.removeItem(at: directory) }
            guard rename(partial.path, directory.path) == 0 else {
                throw VaultError.io(path: directory.path, detail: String(cString: strerror(errno)))
            }
        } catch {
            try? fm.removeItem(at: partial)
            throw error
        }
        return manifest
    }

    /// How many snapshots to keep: the newest in each of the last `hourly` hours, `daily` days
    /// and `weekly` weeks (UTC), and always the newest of all.
    public struct Retention: Codable, Sendable, Equatable {
        public var hourly: Int
        public var daily: Int
        public var weekly: Int

        public init(hourly: Int = 24, daily: Int = 7, weekly: Int = 4) {
            self.hourly = hourly
            self.daily = daily
            self.weekly = weekly
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            hourly = try c.decodeIfPresent(Int.self, forKey: .hourly) ?? 24
            daily = try c.decodeIfPresent(Int.self, forKey: .daily) ?? 7
            weekly = try c.decodeIfPresent(Int.self, forKey: .weekly) ?? 4
        }

        /// The snapshots (oldest first) it keeps.
        public func keep(_ manifests: [Manifest]) -> Set<String> {
            var calendar = Calendar(identifier: .iso8601)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            var kept = Set<String>()
            if let newest = manifests.last { kept.insert(newest.snapshot) }
            let buckets: [(Int, (Date) -> DateComponents)] = [
                (hourly, { calendar.dateComponents([.year, .month, .day, .hour], from: $0) }),
                (daily, { calendar.dateComponents([.year, .month, .day], from: $0) }),
                (weekly, { calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0) }),
            ]
            for (count, bucket) in buckets {
                var seen = Set<DateComponents>()
                for manifest in manifests.reversed() where seen.count < count {
                    if seen.insert(bucket(manifest.created)).inserted { kept.insert(manifest.snapshot) }
                }
            }
            return kept
        }
    }

    /// Removes the snapshots `retention` does not keep, then every object no remaining snapshot
    /// names. Run it when no backup is being written to `destination`.
    public static func forget(_ destination: any BackupDestination, key: CheckpointVerifier, retention: Retention)
        async throws -> (removedSnapshots: [String], removedObjects: Int)
    {
        let (manifests, problems) = try await snapshots(in: destination, key: key)
        guard problems.isEmpty else {
            throw VaultError.invalidArgument(
                "not pruning while snapshots fail to verify: \(problems.joined(separator: "; "))")
        }
        let kept = retention.keep(manifests)
        let removed = manifests.map(\.snapshot).filter { !kept.contains($0) }
        for snapshot in removed { try await destination.delete(Manifest.key(snapshot)) }
        let needed = Set(manifests.filter { kept.contains($0.snapshot) }.flatMap { $0.entries.map(\.object) })
        var removedObjects = 0
        for object in try await destination.list(prefix: "objects/") where !needed.contains(object) {
            try await destination.delete(object)
            removedObjects += 1
        }
        return (removed, removedObjects)
    }
}

/// A `SHA256Stream` a `@Sendable` reader callback can feed (the callbacks run one at a time).
final class Hasher256: @unchecked Sendable {
    var stream = SHA256Stream()
    var count: UInt64 { stream.count }
    func update(_ bytes: UnsafeRawBufferPointer) { stream.update(bytes) }
    func finish() -> String { stream.hex() }
}

/// The outcome of the last backup a vault's server or CLI made, kept in `run/backup-status.json`
/// for `mvault status`.
public struct BackupStatus: Codable, Sendable, Equatable {
    public var destination: String
    public var lastSuccess: Date?
    public var lastSnapshot: String?
    public var lastFailure: Date?
    public var lastError: String?

    public init(destination: String) { self.destination = destination }

    static func file(_ layout: VaultLayout) -> URL { layout.runDirectory.appendingPathComponent("backup-status.json") }

    public static func read(_ layout: VaultLayout) -> BackupStatus? {
        guard let data = FileManager.default.contents(atPath: file(layout).path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(BackupStatus.self, from: data)
    }

    /// Records a success (`snapshot`) or a failure (`error`).
    public static func record(_ layout: VaultLayout, destination: String, snapshot: String?, error: String?) {
        var status = read(layout) ?? BackupStatus(destination: destination)
        status.destination = destination
        if let snapshot {
            status.lastSuccess = Date()
            status.lastSnapshot = snapshot
        } else {
            status.lastFailure = Date()
            status.lastError = error
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(status) { try? AtomicFile.write(data, to: file(layout), mode: 0o600) }
    }
}
