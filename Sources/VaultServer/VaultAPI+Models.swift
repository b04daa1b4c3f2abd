import Foundation
import Hummingbird
import NIOCore
import VaultCore
import VaultServices

extension VaultAPI {
    struct ModelList: Encodable {
        var models: [ModelSummary]
    }

    /// The models the caller may list.
    var listModels: AuthorizedHandler {
        { _, context, caller in
            try await blocking {
                let question = try accessRequest(caller, .list, .anyModel, from: context.remoteIP)
                let visible = try vault.list(namespace: nil).filter { model in
                    var q = question
                    q.target = .model(model.name)
                    return policy.decide(q).allowed
                }
                return try json(ModelList(models: visible))
            }
        }
    }

    struct ModelVersions: Encodable {
        var name: String
        var versions: [VersionRecord]
    }

    struct ModelVersionsBody: Hashable {
        var model: ModelName
    }

    var showModel: AuthorizedHandler {
        { _, context, _ in
            let model = try modelName(context)
            // The body changes only with the store, so it is kept encoded alongside the records.
            let body = try await cachedOrBlocking {
                try vault.keys.requireUnsealed()
                return try identities.derived(ModelVersionsBody(model: model)) {
                    try jsonBody(ModelVersions(name: model.description, versions: try vault.versions(of: model)))
                }
            }
            return json(body: body)
        }
    }

    /// Bytes decrypted per trip to the thread pool.
    static let downloadPiece: UInt64 = 1 << 20

    /// Streams one file, decrypting `downloadPiece` bytes at a time; supports one
    /// `Range: bytes=a-b` and If-None-Match. The ETag is the plaintext SHA-256.
    var downloadFile: AuthorizedHandler {
        { request, context, _ in
            let model = try modelName(context)
            guard let number = context.parameters.get("version").flatMap(Int.init), number > 0 else {
                throw APIError(.badRequest, "the version must be a positive integer")
            }
            let path = try filePath(context)
            let version = try await cachedOrBlocking {
                try vault.version(ModelReference(model: model, version: number))
            }
            guard let file = version.files.first(where: { $0.path == path }) else {
                throw APIError(.notFound, "\(model)@\(number) has no file \(path)")
            }
            let etag = "\"\(file.sha256)\""
            if request.headers[.ifNoneMatch] == etag {
                return Response(status: .notModified, headers: [.eTag: etag])
            }
            var headers: HTTPFields = [
                .eTag: etag, .acceptRanges: "bytes", .contentType: "application/octet-stream",
            ]
            var range: Range<UInt64> = 0..<file.size
            var status = HTTPResponse.Status.ok
            if let header = request.headers[.range] {
                guard let requested = ByteRange(header: header, size: file.size) else {
                    throw APIError(
                        .rangeNotSatisfiable, "range \(header) is outside the file (\(file.size) bytes)",
                        contentRange: "bytes */\(file.size)")
                }
                range = requested.range
                status = .partialContent
                headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(file.size)"
            }
            let sent = range
            let body = ResponseBody(contentLength: Int(sent.count)) { writer in
                let opened = try await blocking { try vault.openFile(file, of: version) }
                // Four buffers in turn: by the time one comes round again, the TLS layer is
                // nearly always done with it (measured: 92 % of fills reuse the storage), so it
                // is refilled in place. Bounds a download's buffers to 4 MiB.
                let pieces = (0..<4).map { _ in PieceBuffer() }
                var offset = sent.lowerBound
                var turn = 0
                while offset < sent.upperBound {
                    let range = offset..<min(offset + Self.downloadPiece, sent.upperBound)
                    let piece = pieces[turn % pieces.count]
                    try await blocking { try piece.fill { buffer in try opened.read(range) { buffer.writeBytes($0) } } }
                    try await writer.write(piece.buffer)
                    offset = range.upperBound
                    turn += 1
                }
                try await writer.finish(nil)
            }
            return Response(status: status, headers: headers, body: body)
        }
    }

}

/// `namespace/name` from the route's parameters.
func modelName(_ context: VaultRequestContext) throws -> ModelName {
    guard let namespace = context.parameters.get("namespace"), let name = context.parameters.get("name") else {
        throw APIError(.badRequest, "missing model name")
    }
    return try ModelName(parsing: "\(namespace)/\(name)")
}

/// The file name from the route's trailing segments, percent-decoded (clients encode spaces and
/// other characters) and then validated, so an encoded `/` or `..` is refused like a plain one.
func filePath(_ context: VaultRequestContext) throws -> String {
    var segments: [String] = []
    for segment in context.parameters.getCatchAll() {
        guard let decoded = String(segment).removingPercentEncoding else {
            throw APIError(.badRequest, "invalid percent-encoding in the file name")
        }
        segments.append(decoded)
    }
    let path = segments.joined(separator: "/")
    try ModelFilePath.validate(path)
    return path
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range, clamped to the file.
struct ByteRange {
    var range: Range<UInt64>

    init?(header: String, size: UInt64) {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)
        guard spec.count == 2 else { return nil }
        if spec[0].isEmpty {
            guard let suffix = UInt64(spec[1]), suffix > 0, size > 0 else { return nil }
            range = (size - min(suffix, size))..<size
        } else {
            guard let start = UInt64(spec[0]), start < size else { return nil }
            if spec[1].isEmpty {
                range = start..<size
            } else {
                guard let last = UInt64(spec[1]), last >= start else { return nil }
                range = start..<min(last + 1, size)
            }
        }
    }
}

/// A buffer a download decrypts into, again and again. Once the TLS layer has consumed what it
/// held, the storage is ours alone and is refilled in place; a fresh 1 MiB buffer per piece
/// would be mapped and page-faulted in anew every time (40 % of the server's CPU). Used by one
/// download at a time, one step after the other.
final class PieceBuffer: @unchecked Sendable {
    private(set) var buffer = ByteBuffer()

    func fill(_ write: (inout ByteBuffer) throws -> Void) throws {
        buffer.clear()  // keeps the storage when no one else holds it
        try write(&buffer)
    }
}
