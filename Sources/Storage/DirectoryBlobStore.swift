import Foundation
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Blobs as files in a local directory: `blobs/ab/abcd…`, staged in `tmp/` on the same device
/// and renamed into place on commit.
public struct DirectoryBlobStore: BlobStore {
    public let root: URL

    /// Opens (creating if needed) a store rooted at `root`.
    public init(root: URL) throws {
        self.root = root
        for sub in ["blobs", "tmp"] {
            do {
                try FileManager.default.createDirectory(
                    at: root.appendingPathComponent(sub), withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700])
            } catch {
                throw VaultError.io(path: root.appendingPathComponent(sub).path, detail: "cannot create directory")
            }
        }
    }

    func path(_ id: String) throws -> String {
        guard BlobID.isValid(id) else { throw VaultError.corrupt(file: id, detail: "not a blob id") }
        return root.appendingPathComponent("blobs/\(id.prefix(2))/\(id)").path
    }

    public func makeWriter() throws -> any BlobWriter {
        let tmp = root.appendingPathComponent("tmp/\(getpid()).\(UInt64.random(in: 0...UInt64.max)).partial").path
        return try DirectoryBlobWriter(tmp: tmp, store: self)
    }

    public func open(_ id: String) throws -> any BlobReader {
        try FileBlobReader(path: try path(id), name: id)
    }

    public func exists(_ id: String) throws -> Bool {
        access(try path(id), F_OK) == 0
    }

    public func delete(_ id: String) throws {
        let p = try path(id)
        if unlink(p) != 0 && errno != ENOENT { throw AtomicFile.errnoError(path: p) }
        AtomicFile.syncDirectory((p as NSString).deletingLastPathComponent)
    }

    public func list() throws -> [String] {
        let base = root.appendingPathComponent("blobs")
        let fm = FileManager.default
        var ids: [String] = []
        for prefix in (try? fm.contentsOfDirectory(atPath: base.path)) ?? [] {
            for name in (try? fm.contentsOfDirectory(atPath: base.appendingPathComponent(prefix).path)) ?? []
            where BlobID.isValid(name) && name.hasPrefix(prefix) {
                ids.append(name)
            }
        }
        return ids.sorted()
    }

    /// Removes staged files left behind by writers that never committed (e.g. a killed push):
    /// those of processes that no longer run. A live process's writers (an upload in progress in
    /// the server, a push from another shell) are left alone.
    public func removeAbandonedStaging() {
        let tmp = root.appendingPathComponent("tmp")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? [] {
            if let pid = name.split(separator: ".").first.flatMap({ pid_t($0) }), pid > 0,
                kill(pid, 0) == 0 || errno == EPERM
            {
                continue
            }
            unlink(tmp.appendingPathComponent(name).path)
        }
    }
}

/// Buffered writes to a staging file; commit = fsync + rename + fsync(dir).
final class DirectoryBlobWriter: BlobWriter {
    let tmp: String
    let store: DirectoryBlobStore
    var fd: Int32
    var buffer: UnsafeMutableRawBufferPointer
    var used = 0
    var done = false

    init(tmp: String, store: DirectoryBlobStore) throws {
        self.tmp = tmp
        self.store = store
        fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AtomicFile.errnoError(path: tmp) }
        buffer = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    deinit {
        if !done { abort() }
        buffer.deallocate()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if used + bytes.count > buffer.count { try flush() }
        // Whole sealed segments go straight to the file; only small pieces are coalesced.
        if bytes.count >= 1 << 16 {
            try flush()
            try AtomicFile.writeAll(fd: fd, bytes, path: tmp)
            return
        }
        UnsafeMutableRawBufferPointer(rebasing: buffer[used..<used + bytes.count]).copyMemory(from: bytes)
        used += bytes.count
    }

    func flush() throws {
        guard used > 0 else { return }
        try AtomicFile.writeAll(fd: fd, UnsafeRawBufferPointer(rebasing: buffer[0..<used]), path: tmp)
        used = 0
    }

    func commit(as id: String) throws {
        guard !done else {
            throw VaultError.conflict("the staged file was already committed or discarded", hint: "send it again")
        }
        do {
            let final = try store.path(id)
            try flush()
            guard fsync(fd) == 0 else { throw AtomicFile.errnoError(path: tmp) }
            close(fd)
            fd = -1
            let dir = (final as NSString).deletingLastPathComponent
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw AtomicFile.errnoError(path: dir) }
            guard rename(tmp, final) == 0 else { throw AtomicFile.errnoError(path: final) }
            AtomicFile.syncDirectory(dir)
            done = true
        } catch {
            abort()
            throw error
        }
    }

    func abort() {
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(tmp)
        done = true
    }
}

/// pread-based reads of one local file.
public final class FileBlobReader: BlobReader {
    let fd: Int32
    let name: String
    public let size: UInt64

    /// - Parameter name: how errors refer to the file.
    public init(path: String, name: String) throws {
        fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw VaultError.corrupt(file: name, detail: "the stored blob is missing") }
            throw AtomicFile.errnoError(path: path)
        }
        var st = stat()
        fstat(fd, &st)
        size = UInt64(st.st_size)
        self.name = name
    }

    deinit { close(fd) }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        switch PositionalRead.fill(fd, buffer, at: offset) {
        case .filled: return
        case .endOfFile: throw VaultError.io(path: name, detail: "unexpected end of file")
        case .failed(let code):
            errno = code
            throw AtomicFile.errnoError(path: name)
        }
    }
}
