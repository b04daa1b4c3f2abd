import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Crash-safe whole-file replacement: write a temporary file beside the target, fsync it,
/// rename it over the target, fsync the directory. Readers see the old file or the new, never half.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL, mode: mode_t = 0o644) throws {
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw errnoError(path: url.path) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            try data.withUnsafeBytes { try writeAll(fd: fd, $0, path: url.path) }
            guard fsync(fd) == 0 else { throw errnoError(path: url.path) }
            close(fd)
        } catch {
            close(fd)
            throw error
        }
        guard rename(tmp, url.path) == 0 else { throw errnoError(path: url.path) }
        ok = true
        syncDirectory(dir)
    }

    /// Writes every byte of `bytes` to `fd`, retrying short writes.
    public static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw errnoError(path: path)
            }
            offset += n
        }
    }

    /// fsyncs a directory so a rename or unlink in it survives a crash.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// The `VaultError` for the current `errno`: `.noSpace` for ENOSPC/EDQUOT, else `.io`.
    public static func errnoError(path: String) -> VaultError {
        let code = errno
        if code == ENOSPC || code == EDQUOT { return .noSpace(path: path) }
        return .io(path: path, detail: String(cString: strerror(code)))
    }
}
