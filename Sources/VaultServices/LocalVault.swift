import Crypto
import Foundation
import Keyring
import SealedFormat
import Storage
import VaultCore
import VaultPKI
import Watermark

#if canImport(Glibc)
    import Glibc
#endif

/// What a pull wrote.
public struct PullResult: Sendable, Equatable {
    public var version: VersionRecord
    public var files: [PulledFile]

    public init(version: VersionRecord, files: [PulledFile]) {
        self.version = version
        self.files = files
    }
}

/// One file a pull wrote, with the SHA-256 it was checked against: the recorded one for the
/// original, that of the copy for a fingerprinted one.
public struct PulledFile: Sendable, Equatable {
    public var path: String
    public var size: UInt64
    public var sha256: String
    public var fingerprinted: Bool
    /// False when only the size could be checked (a resumed fingerprinted download whose whole
    /// copy the server never sent at once, so never hashed).
    public var verified: Bool
    /// The file was already there with these bytes (an earlier, interrupted pull wrote it), so
    /// it was kept rather than fetched again.
    public var kept: Bool

    public init(
        path: String, size: UInt64, sha256: String, fingerprinted: Bool, verified: Bool = true, kept: Bool = false
    ) {
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.fingerprinted = fingerprinted
        self.verified = verified
        self.kept = kept
    }

    /// Whether `dest` already holds the file whose SHA-256 is `expected`: then a pull run again
    /// keeps it instead of refusing or fetching it again. Nil when there is nothing at `dest`.
    public static func alreadyThere(_ dest: URL, expected: String?) throws -> Bool? {
        guard FileManager.default.fileExists(atPath: dest.path) else { return nil }
        guard let expected else { return false }
        var hasher = SHA256()
        try MappedInput.forEachChunk(path: dest.path) { hasher.update(bufferPointer: $0) }
        return Hex.encode(Array(hasher.finalize())) == expected
    }
}

/// Progress of a long operation on one file.
public struct TransferProgress: Sendable {
    public var file: String
    public var bytesDone: UInt64
    public var bytesTotal: UInt64

    public init(file: String, bytesDone: UInt64, bytesTotal: UInt64) {
        self.file = file
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
    }
}

/// The vault's operations on a local directory: push, pull, list, show, remove, rewrap, verify.
///
/// Every operation first checks the vault is unsealed. Mutations hold the vault's write lock,
/// write blobs before metadata, and record metadata in one transaction, so a crash at any point
/// leaves the previous state and at most some unreferenced blobs (removed by the next mutation).
public final class LocalVault: Sendable {
    public let layout: VaultLayout
    public let metadata: any MetadataStore
    public let blobs: any BlobStore
    public let keys: any VaultKeys
    static let chunkSize = 1 << 20

    /// Opens the vault at `layout.root` with its embedded stores (SQLite and a directory).
    public convenience init(layout: VaultLayout, keys: any VaultKeys) throws {
        try layout.requireVault()
        try self.init(
            layout: layout, metadata: SQLiteMetadataStore(path: layout.metadataFile.path),
            blobs: DirectoryBlobStore(root: layout.root), keys: keys)
    }

    /// Opens the vault with the given stores (another backend, or a wrapper around one).
    public init(layout: VaultLayout, metadata: any MetadataStore, blobs: any BlobStore, keys: any VaultKeys) throws {
        try layout.requireVault()
        self.layout = layout
        self.keys = keys
        self.metadata = metadata
        self.blobs = blobs
    }

    /// Creates a new vault in `root` (which must be missing or empty), with a local certificate
    /// authority and a TLS server certificate for `serverNames` (DNS names or IP addresses).
    /// - Returns: the unseal shares to hand out (empty for a passphrase vault).
    /// - Parameter admin: the first administrator (password already hashed), if any.
    public static func create(
        at root: URL, method: KeyringFile.Method, serverNames: [String] = TLSNames.defaults, admin: UserRecord? = nil
    ) throws -> (shares: [UnsealShare], keyring: Keyring) {
        let layout = VaultLayout(root: root)
        let fm = FileManager.default
        if fm.fileExists(atPath: layout.keyringFile.path) { throw VaultError.vaultExists(path: root.path) }
        if let entries = try? fm.contentsOfDirectory(atPath: root.path), !entries.isEmpty {
            throw VaultError.invalidArgument("\(root.path) is not empty; choose an empty or new directory")
        }
        let names = TLSNames(serverNames)
        let ca = try LocalCertificateAuthority.create(name: "ModelVault CA \(UUID().uuidString.prefix(8))")
        let server = try ca.issueServerCertificate(dnsNames: names.dns, ipAddresses: names.ip)
        let created = try KeyringFile.create(method: method, certificateAuthorityKey: ca.keyPEM)
        do {
            try fm.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            for dir in [layout.runDirectory, layout.tlsDirectory] {
                try fm.createDirectory(
                    at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
        } catch {
            throw VaultError.io(path: root.path, detail: "cannot create the vault directory")
        }
        try AtomicFile.write(Data(try ca.certificatePEM.utf8), to: layout.caCertificate, mode: 0o644)
        try AtomicFile.write(Data(server.certificatePEM.utf8), to: layout.serverCertificate, mode: 0o644)
        try AtomicFile.write(Data(server.keyPEM.utf8), to: layout.serverKey, mode: 0o600)
        let store = try SQLiteMetadataStore(path: layout.metadataFile.path)
        if let admin { try store.createUser(admin) }
        _ = try DirectoryBlobStore(root: root)
        // The keyring file is written last: its presence is what makes the directory a vault.
        try created.file.write(to: layout.keyringFile)
        return (created.shares, created.keyring)
    }

    // MARK: - Push

    /// Stores `paths` (files, or directories whose files are stored by relative path) as a new
    /// version of `model`.
    public func push(
        _ paths: [URL], to model: ModelName, note: String?, progress: ((TransferProgress) -> Void)? = nil
    ) throws -> VersionRecord {
        let inputs = try Self.collectInputs(paths)
        try keys.requireUnsealed()
        var staged: [StagedFile] = []
        defer { for file in staged { file.abort() } }
        for input in inputs {
            staged.append(try stage(input.url, as: input.name, progress: progress))
        }
        let version = try commit(staged, to: model, note: note)
        staged = []
        return version
    }

    /// A file to push and its name inside the version.
    public struct Input: Sendable {
        public var url: URL
        public var name: String
    }

    public static func collectInputs(_ paths: [URL]) throws -> [Input] {
        guard !paths.isEmpty else { throw VaultError.invalidArgument("no files to push") }
        var inputs: [Input] = []
        let fm = FileManager.default
        for url in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
                throw VaultError.inputMissing(path: url.path)
            }
            if isDir.boolValue {
                let base = url.standardizedFileURL.path
                guard let walker = fm.enumerator(atPath: base) else { throw VaultError.inputMissing(path: base) }
                var found: [String] = []
                while let rel = walker.nextObject() as? String {
                    var sub: ObjCBool = false
                    if fm.fileExists(atPath: base + "/" + rel, isDirectory: &sub), !sub.boolValue { found.append(rel) }
                }
                for rel in found.sorted() {
                    // Stored in its canonical form, so two spellings of one name meet as duplicates.
                    let name = ModelFilePath.canonical(rel)
                    try ModelFilePath.validateNew(name)
                    inputs.append(Input(url: URL(fileURLWithPath: base + "/" + rel), name: name))
                }
            } else {
                var st = stat()
                guard stat(url.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                    throw VaultError.inputNotAFile(path: url.path)
                }
                let name = ModelFilePath.canonical(url.lastPathComponent)
                try ModelFilePath.validateNew(name)
                inputs.append(Input(url: url, name: name))
            }
        }
        var seen = Set<String>()
        for input in inputs where !seen.insert(input.name).inserted {
            throw VaultError.duplicateFileName(input.name)
        }
        try ModelFilePath.validateSet(inputs.map(\.name))
        guard !inputs.isEmpty else { throw VaultError.invalidArgument("the given directories hold no files") }
        return inputs
    }

    /// Seals one local file into a staged blob.
    func stage(_ url: URL, as name: String, progress: ((TransferProgress) -> Void)?) throws -> StagedFile {
        var st = stat()
        guard stat(url.path, &st) == 0 else { throw AtomicFile.errnoError(path: url.path) }
        let total = UInt64(st.st_size)
        let sealer = try makeSealer(name: name, threads: ProcessInfo.processInfo.activeProcessorCount)
        do {
            try MappedInput.forEachChunk(path: url.path) { chunk in
                try sealer.append(chunk)
                progress?(TransferProgress(file: name, bytesDone: sealer.size, bytesTotal: max(total, sealer.size)))
            }
            return try sealer.finish()
        } catch {
            sealer.abort()
            throw error
        }
    }

    // MARK: - Pull

    /// Writes every file of `reference` under `directory`, each checked against its recorded
    /// SHA-256 before it appears under its final name. With `recipient`, model files are
    /// fingerprinted for that recipient on the way (`Recipient.offline`); either way each file's
    /// download is recorded.
    @discardableResult
    public func pull(
        _ reference: ModelReference, to directory: URL, force: Bool, recipient: String? = nil,
        progress: ((TransferProgress) -> Void)? = nil
    ) throws -> PullResult {
        try keys.requireUnsealed()
        let version = try metadata.version(of: reference.model, number: reference.version)
        let fm = FileManager.default
        // A file already there is kept when it is the original (a pull run again), else refused
        // without --force; a fingerprinted copy differs per pull, so it is never taken as kept.
        var kept = Set<String>()
        for file in version.files {
            try ModelFilePath.validate(file.path)
            let dest = directory.appendingPathComponent(file.path)
            guard !force, fm.fileExists(atPath: dest.path) else { continue }
            guard recipient == nil, try PulledFile.alreadyThere(dest, expected: file.sha256) == true else {
                throw VaultError.outputExists(path: dest.path)
            }
            kept.insert(file.path)
        }
        var pulled: [PulledFile] = []
        for file in version.files {
            if kept.contains(file.path) {
                pulled.append(
                    PulledFile(path: file.path, size: file.size, sha256: file.sha256, fingerprinted: false, kept: true))
                continue
            }
            let dest = directory.appendingPathComponent(file.path)
            var record = DownloadRecord(
                at: Date(), model: version.model, version: version.number, path: file.path, fileSHA256: file.sha256,
                user: nil, tokenID: nil, sourceIP: nil, recipient: nil, rangeStart: 0, rangeEnd: file.size)
            let opened = try openFile(file, of: version)
            if let recipient, let layout = try markableLayout(file, of: version, opened: opened) {
                record.recipient = recipient
                let id = try metadata.recordDownload(record)
                let keys = try fingerprintKeys(version, recipient: recipient)
                let marked = MarkedSource(opened, tensors: layout.tensors, marker: keys.marker(layout))
                let digest = try write(file, of: version, to: dest, expected: nil, progress: progress) { sink in
                    var buffer = [UInt8](repeating: 0, count: Self.chunkSize)
                    var at: UInt64 = 0
                    while at < file.size {
                        let n = Int(min(UInt64(buffer.count), file.size - at))
                        try buffer.withUnsafeMutableBytes { raw in
                            let piece = UnsafeMutableRawBufferPointer(rebasing: raw[0..<n])
                            try marked.read(at: at, into: piece)
                            try sink(UnsafeRawBufferPointer(piece))
                        }
                        at += UInt64(n)
                    }
                }
                try metadata.completeDownload(id: id, sentSHA256: digest)
                pulled.append(PulledFile(path: file.path, size: file.size, sha256: digest, fingerprinted: true))
            } else {
                let id = try metadata.recordDownload(record)
                let digest = try write(file, of: version, to: dest, expected: file.sha256, progress: progress) {
                    try opened.read(0..<file.size, threads: ProcessInfo.processInfo.activeProcessorCount, to: $0)
                }
                try metadata.completeDownload(id: id, sentSHA256: digest)
                pulled.append(PulledFile(path: file.path, size: file.size, sha256: digest, fingerprinted: false))
            }
        }
        return PullResult(version: version, files: pulled)
    }

    /// Writes what `produce` passes to its sink into `dest`, through a temporary file renamed
    /// into place once complete, checked against `expected` (when given) and synced; returns the
    /// SHA-256 of what was written.
    func write(
        _ file: FileRecord, of version: VersionRecord, to dest: URL, expected: String?,
        progress: ((TransferProgress) -> Void)?,
        produce: (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> String {
        let dir = dest.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw VaultError.io(path: dir.path, detail: "cannot create directory")
        }
        let tmp = dir.appendingPathComponent(".\(dest.lastPathComponent).mvault-partial-\(getpid())").path
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AtomicFile.errnoError(path: dest.path) }
        var finished = false
        defer {
            if fd >= 0 && !finished { close(fd) }
            if !finished { unlink(tmp) }
        }
        var hasher = SHA256()
        var done: UInt64 = 0
        let name = "\(version.model)@\(version.number)/\(file.path)"
        try mapSealedErrors(file: name, blobID: file.blobID) {
            try produce { bytes in
                hasher.update(bufferPointer: bytes)
                try AtomicFile.writeAll(fd: fd, bytes, path: dest.path)
                done += UInt64(bytes.count)
                progress?(TransferProgress(file: file.path, bytesDone: done, bytesTotal: file.size))
            }
        }
        guard done == file.size else {
            throw VaultError.integrity(file: name, detail: "size differs from the recorded size")
        }
        let digest = Hex.encode(hasher.finalize())
        if let expected, digest != expected {
            throw VaultError.integrity(file: name, detail: "SHA-256 differs from the recorded digest")
        }
        guard fsync(fd) == 0 else { throw AtomicFile.errnoError(path: dest.path) }
        close(fd)
        finished = true
        guard rename(tmp, dest.path) == 0 else {
            unlink(tmp)
            throw AtomicFile.errnoError(path: dest.path)
        }
        return digest
    }

    /// Opens and authenticates `file` once, for serving many ranges of it (an HTTP download reads
    /// it piece by piece). Errors name the file as `read` does.
    public func openFile(_ file: FileRecord, of version: VersionRecord) throws -> OpenedFile {
        let name = "\(version.model)@\(version.number)/\(file.path)"
        return try withReader(file, named: name) { OpenedFile(vault: self, file: file, name: name, reader: $0) }
    }

    /// One authenticated sealed file, open for reading (see `LocalVault.openFile`). Reads are
    /// positional and keep no state, so several may run at once.
    public struct OpenedFile: @unchecked Sendable {
        let vault: LocalVault
        let file: FileRecord
        let name: String
        let reader: SealedFileReader<BlobSource>

        /// Decrypts plaintext bytes `range`, authenticating every segment it reads.
        public func read(
            _ range: Range<UInt64>, threads: Int = 1, to sink: (UnsafeRawBufferPointer) throws -> Void
        ) throws {
            try vault.mapSealedErrors(file: name, blobID: file.blobID) {
                try reader.read(range, threads: threads, to: sink)
            }
        }
    }

    /// Opens the sealed blob of `file`, translating format and key errors into `VaultError`s
    /// that name the file.
    func withReader<T>(_ file: FileRecord, named name: String, _ body: (SealedFileReader<BlobSource>) throws -> T)
        throws -> T
    {
        let reader = try mapSealedErrors(file: name, blobID: file.blobID) {
            try SealedFileReader(source: BlobSource(reader: try blobs.open(file.blobID)), keys: keys)
        }
        return try body(reader)
    }

    func mapSealedErrors<T>(file: String, blobID: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SealedFormatError {
            throw VaultError.corrupt(file: file, detail: "\(error) (blob \(blobID.prefix(12))…)")
        } catch KeyringError.retiredVersion(let version) {
            throw VaultError.retiredKey(file: file, version: version)
        } catch KeyringError.foreignKey {
            throw VaultError.corrupt(file: file, detail: "sealed under another vault's keyring")
        } catch VaultError.corrupt(_, let detail) {
            throw VaultError.corrupt(file: file, detail: detail)
        }
    }

    // MARK: - Listing and removal

    public func list(namespace: String?) throws -> [ModelSummary] {
        try keys.requireUnsealed()
        return try metadata.models(namespace: namespace)
    }

    public func versions(of model: ModelName) throws -> [VersionRecord] {
        try keys.requireUnsealed()
        return try metadata.versions(of: model)
    }

    public func version(_ reference: ModelReference) throws -> VersionRecord {
        try keys.requireUnsealed()
        return try metadata.version(of: reference.model, number: reference.version)
    }

    /// Removes one version; blobs no other version uses are deleted.
    public func remove(_ model: ModelName, version number: Int) throws -> VersionRecord {
        try keys.requireUnsealed()
        return try withWriteLock {
            let removed = try metadata.deleteVersion(of: model, number: number)
            try collectGarbage()
            return removed
        }
    }

    /// Deletes blobs no version refers to, and staging files of writers that never committed.
    /// Runs under the write lock, so no push can be between committing a blob and recording it.
    func collectGarbage() throws {
        let referenced = try metadata.referencedBlobIDs()
        for id in try blobs.list() where !referenced.contains(id) {
            try blobs.delete(id)
        }
        blobs.removeAbandonedStaging()
    }

    func withWriteLock<T>(_ body: () throws -> T) throws -> T {
        try? FileManager.default.createDirectory(
            at: layout.runDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = open(layout.writeLock.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AtomicFile.errnoError(path: layout.writeLock.path) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw AtomicFile.errnoError(path: layout.writeLock.path) }
        }
        return try body()
    }
}
