import Foundation
import HTTPTypes
import Hummingbird
import Identity
import NIOCore
import Synchronization
import VaultCore
import VaultServices
import VaultWire

/// Uploads in progress: files sealed into staged blobs as they stream in, made a version by
/// one commit. Held in memory; an upload idle longer than `uploadIdleSeconds`, or one the
/// server forgets by restarting, leaves nothing behind (its staged blobs are discarded).
///
/// An upload ends once, by its commit or its abort: whichever takes it first wins, and any
/// other request about it (a second commit, an abort, a file that finishes arriving later)
/// gets 409 and leaves no staged bytes behind. What one user holds in unfinished uploads is
/// bounded (`maxUploadFilesPerUser`, `maxUploadBytesPerUser`, `maxOpenUploadsPerUser`).
final class UploadRegistry: Sendable {
    final class Upload: @unchecked Sendable {
        let id: String
        let model: ModelName
        let owner: String
        // Guarded by the registry's lock:
        var files: [String: StagedFile] = [:]
        var touched = Date()
        /// Files still arriving, and the bytes they have brought so far.
        var arriving = 0
        var arrivingBytes: UInt64 = 0

        init(id: String, model: ModelName, owner: String) {
            self.id = id
            self.model = model
            self.owner = owner
        }

        var bytes: UInt64 { files.values.reduce(arrivingBytes) { $0 + $1.record.size } }
    }

    struct Limits: Sendable {
        var idleSeconds: TimeInterval
        var filesPerUser: Int
        var bytesPerUser: UInt64
        var openPerUser: Int
    }

    struct Ended {
        let model: ModelName
        let owner: String
        /// "committed as version 3", "aborted"…
        let outcome: String
    }

    let limits: Limits
    let uploads = Mutex<[String: Upload]>([:])
    /// How recent uploads ended, so a retried commit learns what became of its upload.
    let ended = Mutex<[String: Ended]>([:])

    init(limits: Limits) { self.limits = limits }

    func start(model: ModelName, owner: String) throws -> String {
        let id = "u" + Hex.encode(SecretGenerator.bytes(8))
        let expired = try uploads.withLock { uploads in
            let now = Date()
            let expired = uploads.values.filter { now.timeIntervalSince($0.touched) >= limits.idleSeconds }
            for upload in expired { uploads[upload.id] = nil }
            guard uploads.values.count(where: { $0.owner == owner }) < limits.openPerUser else {
                throw APIError(
                    .tooManyRequests, "you have \(limits.openPerUser) unfinished uploads",
                    hint: "commit or abort one first (DELETE /v1/models/NS/NAME/uploads/ID)")
            }
            uploads[id] = Upload(id: id, model: model, owner: owner)
            return expired
        }
        for upload in expired { for file in upload.files.values { file.abort() } }
        return id
    }

    /// The upload `id` of `owner` for `model`; 409 when it has ended, else 404.
    func find(_ id: String, model: ModelName, owner: String) throws -> Upload {
        let found = uploads.withLock { uploads -> Upload? in
            guard let upload = uploads[id], upload.model == model, upload.owner == owner else { return nil }
            upload.touched = Date()
            return upload
        }
        if let found { return found }
        if let end = ended.withLock({ $0[id] }), end.model == model, end.owner == owner {
            throw APIError(
                .conflict, "upload \(id) was already \(end.outcome)",
                hint: "start a new upload: POST /v1/models/\(model)/uploads")
        }
        throw APIError(
            .notFound, "no upload \(id) of yours for \(model)", hint: "start one: POST /v1/models/\(model)/uploads")
    }

    /// Remembers how `upload` ended (the last 10,000 ends are kept).
    func recordEnd(_ upload: Upload, _ outcome: String) {
        ended.withLock { ended in
            if ended.count >= 10_000 { ended.removeAll() }
            ended[upload.id] = Ended(model: upload.model, owner: upload.owner, outcome: outcome)
        }
    }

    /// 409 when `upload` has ended (committed or aborted) since it was found. Under the lock.
    private func requireOpen(_ upload: Upload, in uploads: [String: Upload]) throws {
        guard uploads[upload.id] === upload else {
            throw APIError(
                .conflict, "upload \(upload.id) was committed or aborted",
                hint: "start a new upload: POST /v1/models/\(upload.model)/uploads")
        }
    }

    /// Counts a file that starts arriving for `upload`, within its owner's file limit (a new copy
    /// of a file the upload holds replaces it, so it is not one more).
    func beginFile(_ path: String, of upload: Upload) throws {
        try uploads.withLock { uploads in
            try requireOpen(upload, in: uploads)
            let held = uploads.values.filter { $0.owner == upload.owner }.reduce(0) {
                $0 + $1.files.count + $1.arriving
            }
            // Refused now rather than at the commit: a name the version could not hold beside the others.
            try ModelFilePath.validateSet(upload.files.keys.filter { $0 != path } + [path])
            guard held < limits.filesPerUser || upload.files[path] != nil else {
                throw APIError(
                    .contentTooLarge, "your unfinished uploads hold \(limits.filesPerUser) files, the most allowed",
                    hint: "commit or abort an upload first")
            }
            upload.arriving += 1
        }
    }

    /// Counts `count` more bytes of a file arriving for `upload`, within its owner's byte limit.
    func charge(_ count: Int, to upload: Upload) throws {
        try uploads.withLock { uploads in
            try requireOpen(upload, in: uploads)
            let held = uploads.values.filter { $0.owner == upload.owner }.reduce(UInt64(0)) { $0 + $1.bytes }
            guard held + UInt64(count) <= limits.bytesPerUser else {
                throw APIError(
                    .contentTooLarge,
                    "your unfinished uploads would hold more than \(limits.bytesPerUser) bytes, the most allowed",
                    hint: "commit or abort an upload first")
            }
            upload.arrivingBytes += UInt64(count)
            upload.touched = Date()
        }
    }

    /// Ends a file's arrival: adds it (replacing one of the same name) when given, else only
    /// forgets what was counted for it. A file that finishes after its upload ended is discarded
    /// with 409, so the client never takes it for stored.
    func endFile(_ file: StagedFile?, charged: UInt64, of upload: Upload) throws {
        let (replaced, refused) = uploads.withLock { uploads in
            upload.arriving -= 1
            upload.arrivingBytes -= charged
            guard let file else { return (StagedFile?.none, false) }
            guard uploads[upload.id] === upload else { return (nil, true) }
            defer { upload.files[file.record.path] = file }
            return (upload.files[file.record.path], false)
        }
        replaced?.abort()
        if refused {
            file?.abort()
            try uploads.withLock { try requireOpen(upload, in: $0) }
        }
    }

    /// Ends the upload and hands back its files, sorted by path; 409 when it has already ended.
    /// A commit of an upload without files is refused (400) and leaves it open.
    func take(_ upload: Upload, forCommit: Bool = false) throws -> [StagedFile] {
        try uploads.withLock { uploads in
            try requireOpen(upload, in: uploads)
            guard !forCommit || !upload.files.isEmpty else {
                throw APIError(
                    .badRequest, "upload \(upload.id) holds no files",
                    hint: "PUT each file to …/uploads/\(upload.id)/files/NAME first")
            }
            // Ended from here on: a request arriving before the outcome is known hears of it.
            recordEnd(upload, forCommit ? "being committed" : "aborted")
            uploads[upload.id] = nil
            return upload.files.sorted { $0.key < $1.key }.map(\.value)
        }
    }
}

extension VaultAPI {
    struct UploadStarted: Encodable {
        var upload: String
        var model: String
    }

    /// Starts an upload of a new version of the model.
    var startUpload: AuthorizedHandler {
        { [self] _, context, caller in
            let model = try modelName(context)
            try keys.requireUnsealed()
            let id = try uploads.start(model: model, owner: caller.name)
            return try json(UploadStarted(upload: id, model: model.description), status: .created)
        }
    }

    /// Streams one file of an upload into a sealed, staged blob, 1 MiB at a time. An optional
    /// `X-Content-SHA256` header is checked against what arrived.
    var uploadFile: AuthorizedHandler {
        { [self] request, context, caller in
            let model = try modelName(context)
            let upload = try uploads.find(try parameter("upload", context), model: model, owner: caller.name)
            let path = try filePath(context)
            try uploads.beginFile(path, of: upload)
            var charged: UInt64 = 0
            var ended = false
            defer { if !ended { try? uploads.endFile(nil, charged: charged, of: upload) } }
            let sealer = try await blocking { [self] in try vault.makeSealer(name: path) }
            let staged: StagedFile
            do {
                var pending = ByteBuffer()
                var body = request.body.makeAsyncIterator()
                while let piece = try await Self.nextPiece(&body) {
                    try uploads.charge(piece.readableBytes, to: upload)
                    charged += UInt64(piece.readableBytes)
                    pending.writeImmutableBuffer(piece)
                    if pending.readableBytes >= 1 << 20 {
                        let full = pending
                        pending = ByteBuffer()
                        try await blocking { try full.withUnsafeReadableBytes { try sealer.append($0) } }
                    }
                }
                let rest = pending
                staged = try await blocking {
                    try rest.withUnsafeReadableBytes { try sealer.append($0) }
                    return try sealer.finish()
                }
            } catch {
                sealer.abort()
                throw error
            }
            if let expected = request.headers[Self.contentSHA256], expected.lowercased() != staged.record.sha256 {
                staged.abort()
                throw APIError(
                    .badRequest, "\(path): the body's SHA-256 is \(staged.record.sha256), not \(expected.prefix(64))",
                    hint: "the file changed or was damaged in transit; send it again")
            }
            ended = true
            try uploads.endFile(staged, charged: charged, of: upload)
            return try json(staged.record.publicView, status: .created)
        }
    }

    static let contentSHA256 = HTTPField.Name("X-Content-SHA256")!

    /// The next piece of a request body. The body failing to arrive (the client closed the
    /// connection, or broke its chunked encoding) is the client's doing: a 400, not a 500.
    static func nextPiece(_ body: inout RequestBody.AsyncIterator) async throws -> ByteBuffer? {
        do { return try await body.next() } catch {
            throw APIError(
                .badRequest, "the request body ended before it was complete",
                hint: "send the file again; nothing of it was kept")
        }
    }

    /// Makes the upload's files a new version, all at once.
    var commitUpload: AuthorizedHandler {
        { [self] request, context, caller in
            let model = try modelName(context)
            let upload = try uploads.find(try parameter("upload", context), model: model, owner: caller.name)
            let body = try await decode(CommitRequest.self, from: request)
            try body.validate()
            let files = try uploads.take(upload, forCommit: true)
            do {
                let version = try await blocking { [self] in
                    defer { for file in files { file.abort() } }
                    return try vault.commit(files, to: model, note: body.note)
                }
                uploads.recordEnd(upload, "committed as version \(version.number)")
                return try json(version, status: .created)
            } catch {
                uploads.recordEnd(upload, "ended by a commit that failed: \(APIError.from(error).message)")
                throw error
            }
        }
    }

    var abortUpload: AuthorizedHandler {
        { [self] _, context, caller in
            let model = try modelName(context)
            let upload = try uploads.find(try parameter("upload", context), model: model, owner: caller.name)
            for file in try uploads.take(upload) { file.abort() }
            uploads.recordEnd(upload, "aborted")
            return Response(status: .noContent)
        }
    }

    var removeVersion: AuthorizedHandler {
        { [self] _, context, _ in
            let model = try modelName(context)
            guard let number = context.path.get("version").flatMap(Int.init), number > 0 else {
                throw APIError(.badRequest, "the version must be a positive integer")
            }
            return try await blocking { [self] in try json(try vault.remove(model, version: number)) }
        }
    }
}

extension FileRecord {
    /// What clients see of a stored file (the blob address stays internal).
    struct PublicView: Encodable {
        var path: String
        var size: UInt64
        var sha256: String
    }

    var publicView: PublicView { PublicView(path: path, size: size, sha256: sha256) }
}
