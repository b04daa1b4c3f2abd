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

    /// Streams one file, decrypting 1 MiB at a time; supports one `Range: bytes=a-b` and
    /// If-None-Match. The ETag is the plaintext SHA-256.
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
                var offset = sent.lowerBound
                while offset < sent.upperBound {
                    let piece = offset..<min(offset + (1 << 20), sent.upperBound)
                    let buffer = try await blocking {
                        var buffer = ByteBuffer()
                        buffer.reserveCapacity(Int(piece.count))
                        try opened.read(piece) { buffer.writeBytes($0) }
                        return buffer
                    }
                    try await writer.write(buffer)
                    offset = piece.upperBound
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
