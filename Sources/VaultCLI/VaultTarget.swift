import AsyncHTTPClient
import Crypto
import Foundation
import Keyring
import NIOCore
import NIOFoundationCompat
import Storage
import VaultCore
import VaultServices

#if canImport(Glibc)
    import Glibc
#endif

/// What `push`, `pull`, `ls`, `show` and `rm` work on: a local vault directory, or a server.
protocol VaultTarget {
    func list(namespace: String?) async throws -> [ModelSummary]
    func versions(of model: ModelName) async throws -> [VersionRecord]
    func version(_ reference: ModelReference) async throws -> VersionRecord
    func push(_ paths: [URL], to model: ModelName, note: String?, progress: @escaping (TransferProgress) -> Void)
        async throws -> VersionRecord
    func pull(
        _ reference: ModelReference, to directory: URL, force: Bool, copy: PullCopy,
        progress: @escaping (TransferProgress) -> Void
    ) async throws -> PullResult
    func remove(_ model: ModelName, version: Int) async throws -> VersionRecord
    /// Releases connections (a no-op for a local vault).
    func close() async
}

extension VaultOptions {
    /// `--vault DIR` names a local vault; else the server of the login profile (or
    /// `MVAULT_ADDR`/`MVAULT_TOKEN`), saying so on stderr when `MVAULT_VAULT` names a local vault
    /// too; else the local vault of `MVAULT_VAULT` or the current directory.
    func target() throws -> any VaultTarget {
        if let profile = try remoteProfile() { return RemoteVault(client: try RemoteClient(profile)) }
        return LocalTarget(vault: try openVault(self))
    }
}

extension VaultOptions {
    /// The login profile a command uses instead of a local vault, if it does (see `target()`).
    func remoteProfile() throws -> RemoteProfile? {
        guard vault == nil, let profile = try RemoteProfile.current() else { return nil }
        if let local = ProcessInfo.processInfo.environment["MVAULT_VAULT"] {
            Terminal.note(
                "using the server \(profile.addr) (logged in as \(profile.user)), not MVAULT_VAULT=\(local); pass --vault \(local) for the local vault, or run `mvault logout`"
            )
        }
        return profile
    }
}

struct LocalTarget: VaultTarget {
    let vault: LocalVault

    func list(namespace: String?) throws -> [ModelSummary] { try vault.list(namespace: namespace) }
    func versions(of model: ModelName) throws -> [VersionRecord] { try vault.versions(of: model) }
    func version(_ reference: ModelReference) throws -> VersionRecord { try vault.version(reference) }
    func push(_ paths: [URL], to model: ModelName, note: String?, progress: @escaping (TransferProgress) -> Void)
        throws -> VersionRecord
    {
        try vault.push(paths, to: model, note: note, progress: progress)
    }
    func pull(
        _ reference: ModelReference, to directory: URL, force: Bool, copy: PullCopy,
        progress: @escaping (TransferProgress) -> Void
    ) throws -> PullResult {
        var recipient: String?
        if case .recipient(let name) = copy { recipient = try Recipient.offline(name) }
        return try vault.pull(reference, to: directory, force: force, recipient: recipient, progress: progress)
    }
    func remove(_ model: ModelName, version: Int) throws -> VersionRecord { try vault.remove(model, version: version) }
    func close() async {}
}

/// Which copy of a model's files a pull writes.
enum PullCopy: Equatable {
    /// From a server: a copy fingerprinted for the caller. From a local vault (the host that
    /// holds the keys): the original.
    case own
    /// The original, unmarked (from a server, needs the push capability).
    case unmarked
    /// A copy fingerprinted for someone outside the vault.
    case recipient(String)
}

/// The same operations against a server: uploads stream each file, downloads resume.
struct RemoteVault: VaultTarget {
    let client: RemoteClient

    struct ModelList: Decodable {
        var models: [ModelSummary]
    }

    struct ModelVersions: Decodable {
        var versions: [VersionRecord]
    }

    func list(namespace: String?) async throws -> [ModelSummary] {
        let all = try await client.call(ModelList.self, .GET, "/v1/models").models
        guard let namespace else { return all }
        return all.filter { $0.name.hasPrefix(namespace + "/") }
    }

    func versions(of model: ModelName) async throws -> [VersionRecord] {
        try await client.call(ModelVersions.self, .GET, "/v1/models/\(model)").versions
    }

    func version(_ reference: ModelReference) async throws -> VersionRecord {
        let versions = try await versions(of: reference.model)
        guard let number = reference.version else {
            guard let last = versions.last else { throw VaultError.noVersions(reference.model.description) }
            return last
        }
        guard let found = versions.first(where: { $0.number == number }) else {
            throw VaultError.unknownVersion(reference.model.description, number)
        }
        return found
    }

    struct Started: Decodable {
        var upload: String
    }

    func push(_ paths: [URL], to model: ModelName, note: String?, progress: @escaping (TransferProgress) -> Void)
        async throws -> VersionRecord
    {
        let inputs = try LocalVault.collectInputs(paths)
        let upload = try await client.call(Started.self, .POST, "/v1/models/\(model)/uploads").upload
        let base = "/v1/models/\(model)/uploads/\(upload)"
        do {
            for input in inputs {
                try await send(input, to: base + "/files/" + RemoteClient.escape(input.name), progress: progress)
            }
            var body: [String: Any] = [:]
            if let note { body["note"] = note }
            return try await client.call(VersionRecord.self, .POST, base + "/commit", json: body)
        } catch {
            _ = try? await client.call(.DELETE, base)
            throw error
        }
    }

    /// Streams one file, with its SHA-256 so the server refuses anything that changed on the way.
    func send(_ input: LocalVault.Input, to path: String, progress: @escaping (TransferProgress) -> Void) async throws {
        let (size, digest) = try Self.hashFile(input.url)
        var request = client.request(.PUT, path, headers: [("X-Content-SHA256", digest)])
        request.body = .stream(
            FileChunks(url: input.url, name: input.name, size: size, progress: progress), length: .known(Int64(size)))
        let response = try await client.execute(request)
        let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
        try RemoteClient.check(response.status, data)
    }

    static func hashFile(_ url: URL) throws -> (UInt64, String) {
        var hasher = SHA256()
        var size: UInt64 = 0
        try MappedInput.forEachChunk(path: url.path) { chunk in
            hasher.update(bufferPointer: chunk)
            size += UInt64(chunk.count)
        }
        return (size, Hex.encode(Array(hasher.finalize())))
    }

    func pull(
        _ reference: ModelReference, to directory: URL, force: Bool, copy: PullCopy,
        progress: @escaping (TransferProgress) -> Void
    ) async throws -> PullResult {
        if case .recipient(let name) = copy { _ = try Recipient.offline(name) }
        let version = try await version(reference)
        for file in version.files { try ModelFilePath.validate(file.path) }
        var pulled: [PulledFile] = []
        for file in version.files {
            pulled.append(
                try await download(
                    file, of: version, copy: copy, to: directory.appendingPathComponent(file.path), force: force,
                    progress: progress))
        }
        return PullResult(version: version, files: pulled)
    }

    /// Downloads into `.NAME.<tag>.mvault-partial` next to `dest` (tag: the start of the copy's
    /// ETag, so a partial of another copy is never mixed in), resuming with a Range request —
    /// guarded by If-Range — when an earlier attempt left part of it there. The whole file is
    /// checked against its SHA-256 before it gets its name: the recorded one for the original,
    /// and for a fingerprinted copy the one the server took of it as it was sent.
    func download(
        _ file: FileRecord, of version: VersionRecord, copy: PullCopy, to dest: URL, force: Bool,
        progress: @escaping (TransferProgress) -> Void
    ) async throws -> PulledFile {
        let name = "\(version.model)@\(version.number)/\(file.path)"
        var path = "/v1/models/\(version.model)/versions/\(version.number)/files/\(RemoteClient.escape(file.path))"
        switch copy {
        case .own: break
        case .unmarked: path += "?unmarked=true"
        case .recipient(let recipient):
            path +=
                "?recipient=" + (recipient.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? recipient)
        }
        // What the copy will be: its ETag, whether it is marked, and its digest if known.
        let head = try await client.execute(client.request(.HEAD, path))
        if !(200..<300).contains(Int(head.status.code)) {
            // A HEAD answer has no body: the same GET is refused with the reason.
            let refused = try await client.execute(client.request(.GET, path))
            try RemoteClient.check(refused.status, Data(buffer: try await refused.body.collect(upTo: 1 << 20)))
            try RemoteClient.check(head.status, Data())
        }
        guard let etag = head.headers.first(name: "ETag") else {
            throw VaultError.keyService("the server sent no ETag for \(name)")
        }
        let marked = head.headers.first(name: "X-MVault-Fingerprint") == "owner+recipient"
        // Run again after an interruption: a file the earlier run finished is kept when its bytes
        // are this copy's (the recorded digest; for a fingerprinted copy, the one the server took
        // when it sent it whole); anything else there is overwritten only with --force.
        if !force {
            let known = marked ? head.headers.first(name: "X-MVault-Content-SHA256") : file.sha256
            switch try PulledFile.alreadyThere(dest, expected: known) {
            case true?:
                return PulledFile(
                    path: file.path, size: file.size, sha256: known ?? "", fingerprinted: marked, kept: true)
            case false?: throw VaultError.outputExists(path: dest.path)
            case nil: break
            }
        }
        let tag = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).replacingOccurrences(
            of: "m1-", with: "")
        let dir = dest.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let partial = dir.appendingPathComponent(".\(dest.lastPathComponent).\(tag.prefix(16)).mvault-partial")
        let fd = open(partial.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AtomicFile.errnoError(path: partial.path) }
        defer { Glibc.close(fd) }
        var hasher = SHA256()
        var have: UInt64 = 0
        // Hash what an interrupted download left, so only the rest is fetched.
        let existing = UInt64(max(0, lseek(fd, 0, SEEK_END)))
        if existing > 0 && existing <= file.size {
            try MappedInput.forEachChunk(path: partial.path) { chunk in
                hasher.update(bufferPointer: chunk)
                have += UInt64(chunk.count)
            }
            FileHandle.standardError.write(
                Data("resuming \(ModelFilePath.displayed(file.path)) at \(have) of \(file.size) bytes\n".utf8))
        } else if existing > file.size {
            guard ftruncate(fd, 0) == 0 else { throw AtomicFile.errnoError(path: partial.path) }
        }
        var sentWhole = false
        if have < file.size || file.size == 0 {
            let request = client.request(
                .GET, path, headers: have > 0 ? [("Range", "bytes=\(have)-"), ("If-Range", etag)] : [])
            let response = try await client.execute(request)
            if !(200..<300).contains(Int(response.status.code)) {
                let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
                try RemoteClient.check(response.status, data)
            }
            if response.status == .ok && have > 0 {
                // The server sent the whole file: start over.
                hasher = SHA256()
                have = 0
                guard ftruncate(fd, 0) == 0 else { throw AtomicFile.errnoError(path: partial.path) }
            }
            sentWhole = response.status == .ok
            guard lseek(fd, off_t(have), SEEK_SET) >= 0 else { throw AtomicFile.errnoError(path: partial.path) }
            for try await buffer in response.body {
                try buffer.withUnsafeReadableBytes { bytes in
                    hasher.update(bufferPointer: bytes)
                    try AtomicFile.writeAll(fd: fd, bytes, path: dest.path)
                }
                have += UInt64(buffer.readableBytes)
                progress(TransferProgress(file: file.path, bytesDone: have, bytesTotal: file.size))
            }
        }
        var expected = marked ? head.headers.first(name: "X-MVault-Content-SHA256") : file.sha256
        if expected == nil && sentWhole {
            // The server records the digest of a whole copy before its last byte leaves.
            expected = try await client.execute(client.request(.HEAD, path)).headers.first(
                name: "X-MVault-Content-SHA256")
        }
        let digest = Hex.encode(Array(hasher.finalize()))
        guard have == file.size, expected == nil || digest == expected else {
            unlink(partial.path)
            throw VaultError.integrity(
                file: name,
                detail: "the downloaded bytes do not match the recorded SHA-256 (the partial download was discarded)")
        }
        if expected == nil {
            FileHandle.standardError.write(
                Data(
                    "note: \(ModelFilePath.displayed(file.path)) was resumed and the server holds no digest of the whole fingerprinted copy yet; its size was checked, its bytes came over TLS\n"
                        .utf8))
        }
        guard fsync(fd) == 0 else { throw AtomicFile.errnoError(path: dest.path) }
        guard rename(partial.path, dest.path) == 0 else { throw AtomicFile.errnoError(path: dest.path) }
        return PulledFile(
            path: file.path, size: file.size, sha256: digest, fingerprinted: marked, verified: expected != nil)
    }

    func remove(_ model: ModelName, version: Int) async throws -> VersionRecord {
        try await client.call(VersionRecord.self, .DELETE, "/v1/models/\(model)/versions/\(version)")
    }

    func close() async { try? await client.http.shutdown() }
}

/// A file read 1 MiB at a time as an upload body, reporting progress as it goes.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let url: URL
    let name: String
    let size: UInt64
    let progress: @Sendable (TransferProgress) -> Void

    init(url: URL, name: String, size: UInt64, progress: @escaping (TransferProgress) -> Void) {
        self.url = url
        self.name = name
        self.size = size
        nonisolated(unsafe) let report = progress
        self.progress = { report($0) }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        let chunks: FileChunks
        var sent: UInt64 = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let handle, let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else { return nil }
            sent += UInt64(data.count)
            chunks.progress(TransferProgress(file: chunks.name, bytesDone: sent, bytesTotal: chunks.size))
            return ByteBuffer(data: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(handle: try? FileHandle(forReadingFrom: url), chunks: self)
    }
}
