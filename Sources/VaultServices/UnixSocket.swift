import Foundation
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Minimal blocking Unix-domain stream sockets for the key agent: one JSON line each way.
enum UnixSocket {
    static let maxMessage = 1 << 16

    static func address(_ path: String) throws -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else {
            throw VaultError.invalidArgument(
                "the vault path is too long for its agent socket (\(path)); use a shorter vault path")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    /// Listens on `path` (mode 0600). The caller removes a stale socket first.
    static func listen(path: String) throws -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AtomicFile.errnoError(path: path) }
        let old = umask(0o177)
        defer { umask(old) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            let error = AtomicFile.errnoError(path: path)
            close(fd)
            throw error
        }
        return fd
    }

    /// Connects to `path`; nil when nothing is listening there.
    static func connect(path: String) throws -> Int32? {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AtomicFile.errnoError(path: path) }
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            close(fd)
            return nil
        }
        setTimeout(fd, seconds: 120)
        return fd
    }

    static func setTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The uid of the process at the other end.
    static func peerUID(_ fd: Int32) -> uid_t? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (needs _GNU_SOURCE to import).
        var cred = PeerCredentials(pid: 0, uid: 0, gid: 0)
        var len = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else { return nil }
        return cred.uid
    }

    static func send(_ fd: Int32, _ data: Data) throws {
        var line = data
        line.append(0x0A)
        try line.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: "key agent socket") }
    }

    /// Reads one newline-terminated message.
    static func receive(_ fd: Int32) throws -> Data {
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw VaultError.keyService("the key agent closed the connection") }
            if let newline = chunk[0..<n].firstIndex(of: 0x0A) {
                out.append(contentsOf: chunk[0..<newline])
                return out
            }
            out.append(contentsOf: chunk[0..<n])
            guard out.count <= maxMessage else { throw VaultError.keyService("key agent message too long") }
        }
    }
}

struct PeerCredentials {
    var pid: Int32
    var uid: uid_t
    var gid: gid_t
}
