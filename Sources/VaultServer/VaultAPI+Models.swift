import Crypto
import Foundation
import Hummingbird
import Keyring
import ModelFormats
import NIOCore
import Storage
import VaultCore
import VaultServices
import VaultWire
import Watermark

extension VaultAPI {
    struct ModelList: Encodable {
        var models: [ModelSummary]
    }

    /// The models the caller may list.
    var listModels: AuthorizedHandler {
        { [self] _, context, caller in
            try await blocking { [self] in
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

    var showModel: AuthorizedHandler {
        { [self] _, context, _ in
            let model = try modelName(context)
            // The body changes only with the store, so it is kept encoded alongside the records.
            let encode: @Sendable () throws -> ByteBuffer = { [self] in
                try vault.keys.requireUnsealed()
                return try identities.derived(for: model) { [self] in
                    try jsonBody(ModelVersions(name: model.description, versions: try vault.versions(of: model)))
                }
            }
            // From memory without an await (see `cachedOrBlocking`).
            let body =
                if let known = try identities.withoutWaiting(encode) { known } else { try await blocking(encode) }
            return json(body: body)
        }
    }

    /// Bytes decrypted (and marked) per trip to the thread pool.
    static let downloadPiece: UInt64 = 1 << 20

    /// Streams one file, decrypting `downloadPiece` bytes at a time; supports one
    /// `Range: bytes=a-b`, If-Range and If-None-Match.
    ///
    /// A model file (safetensors or GGUF) is fingerprinted on the way out: the owner mark and
    /// the caller's recipient code (per token, or per account for a session) go into its
    /// weights, deterministically, so a repeated or resumed download is byte-identical and the
    /// ETag is per recipient. With the push capability, `?unmarked=true` sends the original and
    /// `?recipient=NAME` a copy marked for someone outside the vault. Every download is recorded
    /// before its first byte is sent; the ETag of the original is its plaintext SHA-256.
    var downloadFile: AuthorizedHandler {
        { [self] request, context, caller in
            let model = try modelName(context)
            guard let number = context.path.get("version").flatMap(Int.init), number > 0 else {
                throw APIError(.badRequest, "the version must be a positive integer")
            }
            let path = try filePath(context)
            let query = request.uri.queryParameters
            let unmarked =
                try query["unmarked"].map { value in
                    guard value == "true" || value == "false" else {
                        throw APIError(.badRequest, "unmarked must be true or false")
                    }
                    return value == "true"
                } ?? false
            let offline = try query["recipient"].map { try Recipient.offline(String($0)) }
            if unmarked && offline != nil {
                throw APIError(.badRequest, "ask for the unmarked original or for a recipient's copy, not both")
            }
            let ip = context.remoteIP
            if unmarked || offline != nil {
                // A copy without the caller's own code: only for those who could push the model.
                let decision = try await cachedOrBlocking { [self] in
                    try authorize(caller, .push, .model(model.description), from: ip)
                }
                guard decision.allowed else {
                    throw APIError(
                        .forbidden,
                        "\(unmarked ? "the unmarked original" : "a copy for someone outside the vault") of \(model) needs the push capability: \(decision.reason)",
                        hint: "pull without ?unmarked or ?recipient to get your own fingerprinted copy")
                }
            }
            let recipient: String? =
                unmarked ? nil : offline ?? caller.token.map { Recipient.token($0.id) } ?? Recipient.user(caller.name)
            let version = try await cachedOrBlocking { [self] in
                try vault.version(ModelReference(model: model, version: number))
            }
            guard let file = version.files.first(where: { $0.path == path }) else {
                throw APIError(.notFound, "\(model)@\(number) has no file \(path)")
            }
            let (opened, marking) = try await blocking { [self] in
                let opened = try vault.openFile(file, of: version)
                guard let recipient, let layout = try vault.markableLayout(file, of: version, opened: opened) else {
                    return (opened, Marking?.none)
                }
                return (opened, Marking(keys: try vault.fingerprintKeys(version, recipient: recipient), layout: layout))
            }
            let sentRecipient = marking == nil ? nil : recipient
            let etag = "\"\(marking?.keys.entityTag(sha256: file.sha256) ?? file.sha256)\""
            if EntityTags.noneMatch(request.headers[.ifNoneMatch], etag) == false {
                return Response(status: .notModified, headers: [.eTag: etag])
            }
            var headers: HTTPFields = [
                .eTag: etag, .acceptRanges: "bytes", .contentType: "application/octet-stream",
                .fingerprint: sentRecipient == nil ? "none" : "owner+recipient",
            ]
            var range: Range<UInt64> = 0..<file.size
            var status = HTTPResponse.Status.ok
            // If-Range: a resume of another copy (another recipient, or a changed file) gets the whole file.
            if EntityTags.rangeApplies(ifRange: request.headers[.ifRange], etag) {
                switch RangeRequest(header: request.headers[.range], size: file.size) {
                case .whole: break
                case .partial(let requested):
                    range = requested
                    status = .partialContent
                    headers[.contentRange] = RangeRequest.contentRange(range, size: file.size)
                case .unsatisfiable:
                    throw APIError(
                        .rangeNotSatisfiable,
                        "range \((request.headers[.range] ?? "").prefix(100)) is outside the file (\(file.size) bytes)",
                        contentRange: RangeRequest.contentRange(nil, size: file.size))
                }
            }
            let sent = range
            context.audit?.fields.withLock { (f: inout AuditScope.Fields) in
                f.target?.sha256 = [file.sha256]
                f.bytes = UInt64(sent.count)
            }
            // The original's digest is on record; a marked copy's once one was sent whole.
            var sentDigest: String? = file.sha256
            if let sentRecipient {
                sentDigest = try await blocking { [self] in
                    try vault.metadata.sentDigest(fileSHA256: file.sha256, recipient: sentRecipient)
                }
            }
            if let sentDigest { headers[.contentSHA256] = sentDigest }
            if request.method == .head {
                // What a GET would send, without recording or sending it.
                headers[.contentLength] = String(sent.count)
                return Response(status: status, headers: headers)
            }
            let record = DownloadRecord(
                at: Date(), model: model.description, version: number, path: path, fileSHA256: file.sha256,
                user: caller.name, tokenID: caller.token?.id, sourceIP: ip, recipient: sentRecipient,
                rangeStart: sent.lowerBound, rangeEnd: sent.upperBound)
            let id = try await blocking { [self] in try vault.metadata.recordDownload(record) }
            headers[.downloadID] = String(id)
            metrics.download(model: record.model, bytes: UInt64(sent.count))
            for finding in detector.download(
                actor: TheftDetector.actor(user: caller.name, tokenID: caller.token?.id), model: record.model,
                version: number, bytes: UInt64(sent.count), at: record.at)
            {
                audit.alert(
                    finding.kind, finding.detail, actor: .init(user: caller.name, tokenID: caller.token?.id),
                    sourceIP: ip, target: .init(model: record.model, version: number, file: path))
            }
            // The digest of a whole marked copy is taken the first time one is sent.
            let digest = sent == 0..<file.size && sentDigest == nil ? DigestOfSent(id: id) : nil
            let source = marking.map {
                MarkedSource(opened, tensors: $0.layout.tensors, marker: $0.keys.marker($0.layout))
            }
            let body = ResponseBody(contentLength: Int(sent.count)) { writer in
                // Four buffers in turn: by the time one comes round again, the TLS layer is
                // nearly always done with it (measured: 92 % of fills reuse the storage), so it
                // is refilled in place. Bounds a download's buffers to 4 MiB. While one piece is
                // written, the next one or two are decrypted (and marked) at once, and
                // the digest of a marked copy is taken piece by piece, in order, alongside.
                let pieces = (0..<4).map { _ in PieceBuffer() }
                // Pieces end on row boundaries of marked tensors, so no row is marked twice.
                let ranges = Self.pieces(of: sent, cuttingAt: { source?.rowStart(atOrBefore: $0) ?? $0 })
                @Sendable func fill(_ turn: Int) async throws {
                    let range = ranges[turn]
                    let piece = pieces[turn % pieces.count]
                    try await blocking {
                        try piece.fill { buffer in
                            if let source {
                                try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(range.count)) {
                                    try source.read(
                                        at: range.lowerBound,
                                        into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<Int(range.count)]))
                                    return Int(range.count)
                                }
                            } else {
                                try opened.read(range) { buffer.writeBytes($0) }
                            }
                        }
                    }
                }
                // Marking takes a core per piece; plain decryption is fast enough one piece ahead,
                // and a second would only take CPU from the TLS writer.
                let ahead = source == nil ? 1 : 2
                var fills: [Task<Void, any Error>] = []
                var hashes: [Task<Void, any Error>] = []
                defer { for task in fills + hashes { task.cancel() } }
                for turn in ranges.indices {
                    while fills.count < min(turn + 1 + ahead, ranges.count) {
                        let next = fills.count
                        // Its buffer last held piece next − 4, which must be hashed by now.
                        if next >= pieces.count, next - pieces.count < hashes.count {
                            try await hashes[next - pieces.count].value
                        }
                        fills.append(Task { try await fill(next) })
                    }
                    try await fills[turn].value
                    if let digest {
                        let (previous, piece, last) = (
                            hashes.last, pieces[turn % pieces.count], turn == ranges.count - 1
                        )
                        hashes.append(
                            Task {
                                try await previous?.value
                                try await blocking { [self] in
                                    try digest.add(piece.buffer, last: last, store: vault.metadata)
                                }
                            })
                        // The digest is on record before the last byte leaves.
                        if last { try await hashes[turn].value }
                    }
                    try await writer.write(pieces[turn % pieces.count].buffer)
                }
                try await writer.finish(nil)
            }
            return Response(status: status, headers: headers, body: body)
        }
    }

    /// `range` in pieces of at most `downloadPiece` bytes, each ending where `cut` moves its end
    /// back to (never to or before its start).
    static func pieces(of range: Range<UInt64>, cuttingAt cut: (UInt64) -> UInt64) -> [Range<UInt64>] {
        var pieces: [Range<UInt64>] = []
        var at = range.lowerBound
        while at < range.upperBound {
            var end = min(at + downloadPiece, range.upperBound)
            if end < range.upperBound, cut(end) > at { end = cut(end) }
            pieces.append(at..<end)
            at = end
        }
        return pieces
    }

    /// How a download is marked.
    struct Marking: Sendable {
        var keys: FingerprintKeys
        var layout: MarkableLayout
    }
}

extension HTTPFields.Element.Name {
    /// What the copy carries: `owner+recipient`, or `none` for the original and for files that
    /// take no marks.
    static let fingerprint = Self("X-MVault-Fingerprint")!
    /// The SHA-256 of the whole copy this recipient gets, once known.
    static let contentSHA256 = Self("X-MVault-Content-SHA256")!
    /// The download's record id.
    static let downloadID = Self("X-MVault-Download")!
}

/// The SHA-256 of a whole marked copy as it is sent, recorded with its download once the last
/// piece is hashed — before that piece is written, so a client that has every byte can look it up.
final class DigestOfSent: @unchecked Sendable {
    let id: Int64
    var hasher = SHA256()

    init(id: Int64) { self.id = id }

    func add(_ buffer: ByteBuffer, last: Bool, store: any MetadataStore) throws {
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        if last { try store.completeDownload(id: id, sentSHA256: Hex.encode(Array(hasher.finalize()))) }
    }
}

/// `namespace/name` from the route's parameters.
func modelName(_ context: VaultRequestContext) throws -> ModelName {
    guard let namespace = context.path.get("namespace"), let name = context.path.get("name") else {
        throw APIError(.badRequest, "missing model name")
    }
    return try ModelName(namespace: namespace, name: name)
}

/// The file name from the route's trailing segments, percent-decoded (clients encode spaces and
/// other characters) and then validated, so an encoded `/` or `..` is refused like a plain one.
func filePath(_ context: VaultRequestContext) throws -> String {
    var segments: [String] = []
    for segment in context.path.catchAll {
        guard let decoded = String(segment).removingPercentEncoding else {
            throw APIError(.badRequest, "invalid percent-encoding in the file name")
        }
        segments.append(decoded)
    }
    let path = segments.joined(separator: "/")
    try ModelFilePath.validate(path)
    return path
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
