import AuditLog
import Foundation
import Hummingbird
import Keyring
import VaultCore
import VaultWire

extension VaultAPI {
    /// The log, or 503 while it is not open (sealed, or failed its checks at unseal).
    func openLog() throws -> AuditLog {
        guard let log = audit.log else {
            throw APIError(.serviceUnavailable, "the audit log is not open", hint: "unseal the vault")
        }
        return log
    }

    /// The latest signed checkpoint (one is signed now if entries came in since), as the C2SP
    /// signed note: save it outside the vault to detect a later rollback (`mvault audit verify
    /// --checkpoint FILE`).
    var auditCheckpoint: AuthorizedHandler {
        { [self] _, _, _ in
            let note = try await openLog().checkpointNow()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: note)))
        }
    }

    /// Entries `start` to `start + limit` (default: the last 100), as JSON.
    var auditEntries: AuthorizedHandler {
        { [self] request, _, _ in
            let log = try openLog()
            let query = request.uri.queryParameters
            let size = log.size
            let asked = try AuditEntriesQuery(
                start: query["start"].map(String.init), limit: query["limit"].map(String.init), logSize: size)
            let lines = try await blocking { try log.layout.readEntries(start: asked.start, limit: asked.limit) }
            // The stored bytes themselves, so a client can verify an entry against its leaf hash.
            var body = ByteBuffer()
            body.writeString(#"{"entries":["#)
            for (i, line) in lines.enumerated() {
                if i > 0 { body.writeString(",") }
                body.writeBytes(line)
            }
            body.writeString(#"],"size":\#(size)}"#)
            return json(body: body)
        }
    }

    struct InclusionProof: Encodable {
        var index: Int
        var size: Int
        /// Hex SHA-256 hashes.
        var leaf: String
        var root: String
        var proof: [String]
    }

    /// The audit path of entry `index` in the tree of `size` entries (default: all).
    var auditInclusion: AuthorizedHandler {
        { [self] request, _, _ in
            let log = try openLog()
            let query = request.uri.queryParameters
            let asked = try InclusionProofQuery(
                index: query["index"].map(String.init), size: query["size"].map(String.init), logSize: log.size)
            let (index, size) = (asked.index, asked.size)
            let (leaf, proof, root) = try await blocking {
                do { return try log.inclusionProof(index: index, size: size) } catch {
                    throw APIError(.badRequest, "\(error)")
                }
            }
            return try json(
                InclusionProof(
                    index: index, size: size, leaf: Hex.encode(leaf), root: Hex.encode(root),
                    proof: proof.map(Hex.encode)))
        }
    }

    struct ConsistencyProof: Encodable {
        var first: Int
        var second: Int
        var proof: [String]
    }

    /// The consistency proof between the trees of `first` and `second` entries.
    var auditConsistency: AuthorizedHandler {
        { [self] request, _, _ in
            let log = try openLog()
            let query = request.uri.queryParameters
            let asked = try ConsistencyProofQuery(
                first: query["first"].map(String.init), second: query["second"].map(String.init), logSize: log.size)
            let (first, second) = (asked.first, asked.second)
            let proof = try await blocking {
                do { return try log.consistencyProof(from: first, to: second) } catch {
                    throw APIError(.badRequest, "\(error)")
                }
            }
            return try json(ConsistencyProof(first: first, second: second, proof: proof.map(Hex.encode)))
        }
    }

    struct HashRequest: Decodable {
        var value: String
    }

    struct HashResponse: Encodable {
        var hmac: String
    }

    /// The HMAC the audit log uses for `value` (a session id, say), to search the log for it.
    var auditHash: AuthorizedHandler {
        { [self] request, _, _ in
            let body = try await decode(HashRequest.self, from: request)
            guard let hmac = audit.hash(body.value) else {
                throw APIError(.serviceUnavailable, "the audit log is not open", hint: "unseal the vault")
            }
            return try json(HashResponse(hmac: hmac))
        }
    }
}

extension VaultAPI {
    /// Prometheus metrics, for a scraper holding the audit capability (an API token, typically).
    var prometheusMetrics: AuthorizedHandler {
        { [self] _, _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.scrape(self))))
        }
    }
}
