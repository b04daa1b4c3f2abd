import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a regular file through read-only memory maps, one window at a time.
///
/// Bytes go from the page cache to the consumer without the copy `read(2)` makes (which cost
/// more than the AES-GCM itself when sealing), and resident memory stays about one window
/// whatever the file size.
///
/// - Important: a file truncated by another process while it is being read raises SIGBUS. For a
///   push that means the process dies before anything is recorded, like any other crash.
public enum MappedInput {
    /// Calls `body` with consecutive pieces of at most `chunk` bytes covering the file's size as
    /// of opening it.
    /// - Returns: the number of bytes passed to `body`.
    /// - Throws: `VaultError` for files that cannot be opened or mapped, or what `body` throws.
    @discardableResult
    public static func forEachChunk(
        path: String, window: Int = 16 << 20, chunk: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AtomicFile.errnoError(path: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw AtomicFile.errnoError(path: path) }
        let size = Int(st.st_size)
        var offset = 0
        while offset < size {
            let length = min(window, size - offset)
            guard let base = mmap(nil, length, PROT_READ, MAP_SHARED, fd, off_t(offset)), base != MAP_FAILED else {
                throw AtomicFile.errnoError(path: path)
            }
            defer { munmap(base, length) }
            _ = madvise(base, length, MADV_SEQUENTIAL)
            var inner = 0
            while inner < length {
                let n = min(chunk, length - inner)
                try body(UnsafeRawBufferPointer(start: base + inner, count: n))
                inner += n
            }
            offset += length
        }
        return UInt64(size)
    }
}
