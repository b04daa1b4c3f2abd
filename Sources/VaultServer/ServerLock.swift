import Foundation
import VaultServices

#if canImport(Glibc)
    import Glibc
#endif

/// The one server a vault directory may have: an exclusive lock on `run/server.lock`, held for
/// the process's life, with the holder's pid and address written inside, so a second
/// `mvault server` on the same vault is refused at start and told which one runs.
final class ServerLock: Sendable {
    let fd: Int32
    let path: String

    init(layout: VaultLayout, address: String) throws {
        try FileManager.default.createDirectory(
            at: layout.runDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        path = layout.runDirectory.appendingPathComponent("server.lock").path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ServerError.start("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw ServerError.start(
                "another mvault server already serves \(layout.root.path) (\(holder.flatMap { $0.isEmpty ? nil : $0 } ?? "its pid is not recorded yet")); stop it first, or give this one another vault"
            )
        }
        record(address)
    }

    deinit { close(fd) }

    /// Writes who holds the lock: `pid N, listening on HOST:PORT`.
    func record(_ address: String) {
        let text = Array("pid \(getpid()), listening on \(address)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }
}

/// Why the server could not start.
public enum ServerError: Error, CustomStringConvertible {
    case start(String)

    public var description: String {
        switch self {
        case .start(let detail): detail
        }
    }
}
