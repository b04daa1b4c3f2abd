#if canImport(Glibc)
    import Glibc
#endif

/// `pread` until a buffer is full, retrying interrupted calls.
public enum PositionalRead {
    public enum Outcome: Equatable, Sendable {
        case filled
        /// The file ended at this offset, before the buffer was full.
        case endOfFile(at: UInt64)
        /// `pread` failed with this errno.
        case failed(errno: Int32)
    }

    public static func fill(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Outcome {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return .failed(errno: errno)
            }
            if n == 0 { return .endOfFile(at: offset + UInt64(done)) }
            done += n
        }
        return .filled
    }
}
