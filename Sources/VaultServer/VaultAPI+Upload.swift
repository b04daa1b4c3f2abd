import Foundation
import Hummingbird
import Identity
import NIOCore
import Synchronization
import VaultCore
import VaultServices

/// Uploads in progress: files sealed into staged blobs as they stream in, made a version by
/// one commit. Held in memory; an upload idle longer than `uploadIdleSeconds`, or one the
/// server forgets by restarting, leaves nothing behind (its staged blobs are discarded).
final class UploadRegistry: Sendable {
    final class Upload: @unchecked Sendable {
        let id: String
        let model: ModelName
        let owner: String
        /// Guarded by the registry's lock.
        var files: [String: StagedFile] = [:]
        var touched = Date()

        init(id: String, model: ModelName, owner: String) {
            self.id = id
            self.model = model
            self.owner = owner
        }
    }

    let uploads = Mutex<[String: Upload]>([:])

    func start(model: ModelName, owner: String, idleLimit: TimeInterval) -> String {
        let id = "u" + Hex.encode(SecretGenerator.bytes(8))
        uploads.withLock { uploads in
            let now = Date()
            uploads = uploads.filter { now.timeIntervalSince($0.value.touched) < idleLimit }
            uploads[id] = Upload(id: id, model: model, owner: owner)
        }
        return id
    }

    /// The upload `id` of `owner` for `model`, or 404.
    func find(_ id: String, model: ModelName, owner: String) throws -> Upload {
        try uploads.withLock { uploads in
            guard let upload = uploads[id], upload.model == model, upload.owner == owner else {
                throw APIError(
                    .notFound, "no upload \(id) of yours for \(model)",
                    hint: "start one: POST /v1/models/\(model)/uploads")
            }
            upload.touched = Date()
            return upload
        }
    }

    /// Adds (or replaces) a file of `upload`.
    func add(_ file: StagedFile, to upload: Upload) {
        let replaced = uploads.withLock { _ in
            defer { upload.files[file.record.path] = file }
            return upload.files[file.record.path]
        }
        replaced?.abort()
    }

    /// Removes the upload and hands back its files, sorted by path.
    func take(_ upload: Upload) -> [StagedFile] {
        uploads.withLock { uploads in
            uploads[upload.id] = nil
            return upload.files.keys.sorted().map { upload.files[$0]! }
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
            let id = uploads.start(model: model, owner: caller.name, idleLimit: TimeInterval(limits.uploadIdleSeconds))
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
            let sealer = try await blocking { [self] in try vault.makeSealer(name: path) }
            let staged: StagedFile
            do {
                var pending = ByteBuffer()
                for try await piece in request.body {
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
            if let expected = request.headers[.init("X-Content-SHA256")!],
                expected.lowercased() != staged.record.sha256
            {
                staged.abort()
                throw APIError(
                    .badRequest, "\(path): the body's SHA-256 is \(staged.record.sha256), not \(expected)",
                    hint: "the file changed or was damaged in transit; send it again")
            }
            uploads.add(staged, to: upload)
            return try json(staged.record.publicView, status: .created)
        }
    }

    struct CommitRequest: Decodable {
        var note: String?
    }

    /// Makes the upload's files a new version, all at once.
    var commitUpload: AuthorizedHandler {
        { [self] request, context, caller in
            let model = try modelName(context)
            let upload = try uploads.find(try parameter("upload", context), model: model, owner: caller.name)
            let body = try await decode(CommitRequest.self, from: request)
            let files = uploads.take(upload)
            guard !files.isEmpty else {
                throw APIError(
                    .badRequest, "upload \(upload.id) holds no files",
                    hint: "PUT each file to …/uploads/\(upload.id)/files/NAME first")
            }
            let version = try await blocking { [self] in
                defer { for file in files { file.abort() } }
                return try vault.commit(files, to: model, note: body.note)
            }
            return try json(version, status: .created)
        }
    }

    var abortUpload: AuthorizedHandler {
        { [self] _, context, caller in
            let model = try modelName(context)
            let upload = try uploads.find(try parameter("upload", context), model: model, owner: caller.name)
            for file in uploads.take(upload) { file.abort() }
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
