import CAllocator
import Foundation
import SealedFormat
import Storage

#if canImport(Glibc)
    import Glibc
#endif

// mvault-bench seal|open IN OUT [THREADS]
// Seals IN into OUT as MVLT v1 (or opens a sealed IN into OUT) with the default 64 KiB segments,
// segments sealed or opened on THREADS threads (default 1), and prints: bytes, seconds, GB/s,
// peak RSS in MiB.

let kek = KeyEncryptionKey(
    keyringID: [UInt8](repeating: 1, count: 16), version: 1, keyBytes: [UInt8](repeating: 2, count: 32))

struct FileSource: SealedSource {
    let fd: Int32
    let size: UInt64
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            guard n > 0 else { throw SealedFormatError.payloadFailure(segment: 0) }
            done += n
        }
    }
}

/// Buffered sequential output.
final class Output {
    let fd: Int32
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    var used = 0
    init(path: String) { fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600) }
    func write(_ bytes: UnsafeRawBufferPointer) {
        if used + bytes.count > buffer.count { flush() }
        if bytes.count >= 1 << 16 {
            flush()
            writeAll(bytes)
            return
        }
        UnsafeMutableRawBufferPointer(rebasing: buffer[used..<used + bytes.count]).copyMemory(from: bytes)
        used += bytes.count
    }
    func flush() {
        writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
        used = 0
    }
    func writeAll(_ bytes: UnsafeRawBufferPointer) {
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off)
            precondition(n > 0, "write failed")
            off += n
        }
    }
}

mvault_keep_freed_buffers()  // as `mvault` does
let args = CommandLine.arguments
guard args.count == 4 || args.count == 5, args[1] == "seal" || args[1] == "open",
    let threads = Int(args.count == 5 ? args[4] : "1"), threads >= 1
else {
    FileHandle.standardError.write(Data("usage: mvault-bench seal|open IN OUT [THREADS]\n".utf8))
    exit(2)
}
let input = open(args[2], O_RDONLY)
precondition(input >= 0, "cannot open \(args[2])")
var st = stat()
fstat(input, &st)
let output = Output(path: args[3])
let start = DispatchTime.now()
var bytes: UInt64 = 0

if args[1] == "seal" {
    // The same path `mvault push` takes: mapped input, one sealed segment per write.
    var writer = try SealedFileWriter(keys: kek)
    writer.header.encoded.withUnsafeBytes { output.write($0) }
    bytes = try MappedInput.forEachChunk(path: args[2]) { chunk in
        try writer.append(chunk, threads: threads) { output.write($0) }
    }
    try writer.finish { output.write($0) }
} else {
    let reader = try SealedFileReader(source: FileSource(fd: input, size: UInt64(st.st_size)), keys: kek)
    try reader.read(0..<reader.plaintextSize, threads: threads) { output.write($0) }
    bytes = reader.plaintextSize
}
output.flush()
let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
var usage = rusage()
getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
print(
    String(
        format: "%@ threads=\(threads) bytes=%llu seconds=%.3f gbps=%.3f peak_rss_mib=%.1f", args[1], bytes, seconds,
        Double(bytes) / seconds / 1e9, Double(usage.ru_maxrss) / 1024))
