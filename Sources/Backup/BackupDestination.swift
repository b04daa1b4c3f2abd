import Foundation
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Where backups go: a flat store of named objects (`objects/ab/abcd…`, `snapshots/ID`).
/// An object appears whole or not at all.
public protocol BackupDestination: Sendable {
    /// How the operator named it (a directory, or `s3://bucket/prefix`).
    var name: String { get }
    /// The size of the object `key`, or nil when there is none.
    func size(of key: String) async throws -> UInt64?
    /// Stores the file at `file` as `key`.
    func put(_ key: String, file: URL) async throws
    func put(_ key: String, data: Data) async throws
    func get(_ key: String) async throws -> Data
    /// Reads object `key` in pieces, in order.
    func read(_ key: String, _ body: @Sendable (UnsafeRawBufferPointer) throws -> Void) async throws
    /// The keys that start with `prefix`, sorted.
    func list(prefix: String) async throws -> [String]
    func delete(_ key: String) async throws
}

/// Opens the destination `text` names: `s3://BUCKET/PREFIX` or a directory.
/// With `create`, a missing directory is made (for a first backup); otherwise it must exist.
public func backupDestination(_ text: String, environment: [String: String], create: Bool = false) throws
    -> any BackupDestination
{
    if text.hasPrefix("s3://") { return try S3Destination(url: text, environment: environment) }
    return try DirectoryDestination(path: text, create: create)
}

/// A directory, local or mounted. Objects are written to a temporary file, flushed, and renamed
/// into place.
public struct DirectoryDestination: BackupDestination {
    public let root: URL
    public var name: String { root.path }

    public init(path: String, create: Bool = true) throws {
        root = URL(fileURLWithPath: path).standardizedFileURL
        var isDirectory: ObjCBool = false
        if !create {
            guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw VaultError.invalidArgument("\(root.path) holds no backup (no such directory); check the path")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(
                at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw VaultError.io(path: root.path, detail: "cannot create the backup directory")
        }
    }

    func url(_ key: String) -> URL { root.appendingPathComponent(key) }

    public func size(of key: String) async throws -> UInt64? {
        var st = stat()
        guard stat(url(key).path, &st) == 0 else { return nil }
        return UInt64(st.st_size)
    }

    public func put(_ key: String, file: URL) async throws {
        try write(key) { out in
            guard let input = FileHandle(forReadingAtPath: file.path) else {
                throw VaultError.io(path: file.path, detail: "cannot read")
            }
            defer { try? input.close() }
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty { try out.write(contentsOf: chunk) }
        }
    }

    public func put(_ key: String, data: Data) async throws {
        try write(key) { try $0.write(contentsOf: data) }
    }

    func write(_ key: String, _ fill: (FileHandle) throws -> Void) throws {
        let target = url(key)
        let fm = FileManager.default
        let tmp = root.appendingPathComponent("tmp/\(UUID().uuidString).partial")
        do {
            try fm.createDirectory(
                at: tmp.deletingLastPathComponent(), withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            try fm.createDirectory(
                at: target.deletingLastPathComponent(), withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            guard fm.createFile(atPath: tmp.path, contents: nil, attributes: [.posixPermissions: 0o600]),
                let out = FileHandle(forWritingAtPath: tmp.path)
            else { throw VaultError.io(path: tmp.path, detail: "cannot create") }
            do {
                try fill(out)
                try out.synchronize()
                try out.close()
            } catch {
                try? out.close()
                throw error
            }
            guard rename(tmp.path, target.path) == 0 else {
                throw VaultError.io(path: target.path, detail: String(cString: strerror(errno)))
            }
        } catch let error as VaultError {
            try? fm.removeItem(at: tmp)
            throw error
        } catch {
            try? fm.removeItem(at: tmp)
            if (error as NSError).code == NSFileWriteOutOfSpaceError { throw VaultError.noSpace(path: root.path) }
            throw VaultError.io(path: target.path, detail: "\(error.localizedDescription)")
        }
    }

    public func get(_ key: String) async throws -> Data {
        guard let data = FileManager.default.contents(atPath: url(key).path) else {
            throw VaultError.inputMissing(path: url(key).path)
        }
        return data
    }

    public func read(_ key: String, _ body: @Sendable (UnsafeRawBufferPointer) throws -> Void) async throws {
        guard let input = FileHandle(forReadingAtPath: url(key).path) else {
            throw VaultError.inputMissing(path: url(key).path)
        }
        defer { try? input.close() }
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            try chunk.withUnsafeBytes(body)
        }
    }

    public func list(prefix: String) async throws -> [String] {
        // Keys are "dir/…/name"; walk the directory the prefix lies in.
        let base = prefix.contains("/") ? String(prefix[...prefix.lastIndex(of: "/")!]) : ""
        let start = root.appendingPathComponent(base)
        guard let walker = FileManager.default.enumerator(atPath: start.path) else { return [] }
        var keys: [String] = []
        while let relative = walker.nextObject() as? String {
            let key = base + relative
            guard key.hasPrefix(prefix), !key.hasPrefix("tmp/") else { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url(key).path, isDirectory: &isDirectory), !isDirectory.boolValue
            {
                keys.append(key)
            }
        }
        return keys.sorted()
    }

    public func delete(_ key: String) async throws {
        guard unlink(url(key).path) == 0 || errno == ENOENT else {
            throw VaultError.io(path: url(key).path, detail: String(cString: strerror(errno)))
        }
    }
}
