import Foundation
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Random access to the bytes of a model file: a plain file, a buffer, or a sealed blob
/// decrypted on the fly. Parsers read only the header through it; rewriting streams the rest.
/// Reads may come from several threads at once.
public protocol ByteSource: Sendable {
    var size: UInt64 { get }
    /// Fills `buffer` with the bytes at `offset`; throws if they are not all there.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
}

extension ByteSource {
    /// `count` bytes at `offset`.
    public func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(at: offset, into: $0) }
        return out
    }
}

/// Bytes in memory.
public struct BufferSource: ByteSource, Sendable {
    public let data: [UInt8]
    public init(_ data: [UInt8]) { self.data = data }
    public var size: UInt64 { UInt64(data.count) }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard offset <= size, UInt64(buffer.count) <= size - offset else {
            throw ModelFormatError.truncated("a read of \(buffer.count) bytes at offset \(offset)")
        }
        data.withUnsafeBytes {
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)...].prefix(buffer.count)))
        }
    }
}

/// A regular file, read with `pread` (no mapping, so a file truncated meanwhile is an error,
/// not SIGBUS).
public final class FileSource: ByteSource {
    let fd: Int32
    public let path: String
    public let size: UInt64

    public init(path: String) throws {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelFormatError.io("cannot open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw ModelFormatError.io("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path
        size = UInt64(st.st_size)
    }

    deinit { close(fd) }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        switch PositionalRead.fill(fd, buffer, at: offset) {
        case .filled: return
        case .endOfFile(let at): throw ModelFormatError.truncated("\(path) at offset \(at)")
        case .failed(let code): throw ModelFormatError.io("cannot read \(path): \(String(cString: strerror(code)))")
        }
    }
}

/// Reads of `source` through one window of `window` bytes kept in memory: a pass that reads
/// small pieces in order (a matrix row by row) fetches each part of the source once, where each
/// small read of a sealed file would decrypt its whole segment again.
public final class WindowedSource<Source: ByteSource>: ByteSource, @unchecked Sendable {
    let source: Source
    let window: Int
    /// The bytes held, and where they start. Guarded by `lock`.
    var held: [UInt8] = []
    var start: UInt64 = 0
    let lock = NSLock()

    public init(_ source: Source, window: Int = 4 << 20) {
        self.source = source
        self.window = window
    }

    public var size: UInt64 { source.size }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard buffer.count <= window else { return try source.read(at: offset, into: buffer) }
        lock.lock()
        defer { lock.unlock() }
        if offset < start || offset + UInt64(buffer.count) > start + UInt64(held.count) {
            guard offset <= size, UInt64(buffer.count) <= size - offset else {
                throw ModelFormatError.truncated("a read of \(buffer.count) bytes at offset \(offset)")
            }
            start = offset
            held = try source.bytes(at: offset, count: Int(min(UInt64(window), size - offset)))
        }
        held.withUnsafeBytes {
            let from = Int(offset - start)
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[from..<from + buffer.count]))
        }
    }
}
