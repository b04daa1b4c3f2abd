import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import VaultCore

/// An S3-compatible bucket (AWS S3, SeaweedFS, MinIO…), path-style: `s3://BUCKET/PREFIX`.
/// Settings from the environment, named as the AWS tools name them: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (default us-east-1), and
/// `MVAULT_S3_ENDPOINT` (default `https://s3.REGION.amazonaws.com`). Objects over `partSize`
/// go up in parts (multipart upload); a request that fails on the network or with 5xx/429 is
/// tried again, up to `attempts` times.
public struct S3Destination: BackupDestination {
    public let bucket: String
    public let prefix: String
    public let endpoint: URL
    let signer: SigV4
    public var name: String { "s3://\(bucket)/\(prefix)" }
    public static let partSize = 16 << 20
    static let attempts = 4

    public init(url text: String, environment: [String: String]) throws {
        let rest = text.dropFirst("s3://".count)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bucket = parts.first, !bucket.isEmpty else {
            throw VaultError.invalidArgument("an S3 destination is s3://BUCKET[/PREFIX]")
        }
        self.bucket = String(bucket)
        var prefix = parts.count > 1 ? String(parts[1]) : ""
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        self.prefix = prefix
        guard let access = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"],
            !access.isEmpty, !secret.isEmpty
        else {
            throw VaultError.invalidArgument(
                "an S3 destination needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
        }
        let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let endpointText = environment["MVAULT_S3_ENDPOINT"] ?? "https://s3.\(region).amazonaws.com"
        guard let endpoint = URL(string: endpointText), let scheme = endpoint.scheme,
            ["http", "https"].contains(scheme),
            endpoint.host != nil
        else {
            throw VaultError.invalidArgument("MVAULT_S3_ENDPOINT must be http(s)://HOST[:PORT], not \(endpointText)")
        }
        self.endpoint = endpoint
        signer = SigV4(
            accessKey: access, secretKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"], region: region)
    }

    struct Failure: Error, CustomStringConvertible {
        var status: Int
        var body: String
        var description: String {
            if let code = S3Destination.xmlElements("Code", in: body).first {
                return
                    "the S3 server answered \(status) \(code): \(S3Destination.xmlElements("Message", in: body).first ?? "")"
            }
            let meaning =
                switch status {
                case 401, 403: "access denied (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's policy)"
                case 404: "no such bucket"
                case 301, 307, 400: "check AWS_REGION and MVAULT_S3_ENDPOINT"
                default: String(body.prefix(200))
                }
            return "the S3 server answered \(status): \(meaning)"
        }
        var retryable: Bool { status >= 500 || status == 429 }
    }

    /// Sends one signed request, again on network failures and 5xx/429; returns the response
    /// (2xx, or the statuses in `accept`) for the caller to read.
    func send(
        _ method: HTTPMethod, key: String?, query: [(String, String)] = [], body: [UInt8] = [],
        accept: Set<Int> = []
    ) async throws -> HTTPClientResponse {
        let path = "/" + SigV4.encode(bucket) + (key.map { "/" + SigV4.encode(prefix + $0, keepSlash: true) } ?? "")
        let host = endpoint.host! + (endpoint.port.map { ":\($0)" } ?? "")
        let queryText = query.map { "\(SigV4.encode($0.0))=\(SigV4.encode($0.1))" }.joined(separator: "&")
        let url = "\(endpoint.scheme!)://\(host)\(path)" + (queryText.isEmpty ? "" : "?" + queryText)
        let payload = SigV4.sha256Hex(body)
        var lastError: any Error = Failure(status: 0, body: "")
        for attempt in 0..<Self.attempts {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(200 << (2 * (attempt - 1)))) }
            var request = HTTPClientRequest(url: url)
            request.method = method
            let signed = signer.sign(
                method: method.rawValue, path: path, query: query, headers: ["host": host], payloadSHA256: payload,
                date: Date())
            for (name, value) in signed { request.headers.add(name: name, value: value) }
            if !body.isEmpty || method == .PUT || method == .POST {
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
                let status = Int(response.status.code)
                if (200..<300).contains(status) || accept.contains(status) { return response }
                let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                let failure = Failure(status: status, body: text)
                guard failure.retryable else { throw failure }
                lastError = failure
            } catch let failure as Failure where !failure.retryable {
                throw VaultError.io(path: "\(name)\(key ?? "")", detail: failure.description)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastError = error
            }
        }
        throw VaultError.io(path: "\(name)\(key ?? "")", detail: "\(lastError) (after \(Self.attempts) attempts)")
    }

    public func size(of key: String) async throws -> UInt64? {
        let response = try await send(.HEAD, key: key, accept: [404])
        guard response.status.code != 404 else { return nil }
        return response.headers.first(name: "content-length").flatMap { UInt64($0) }
    }

    public func put(_ key: String, data: Data) async throws {
        _ = try await send(.PUT, key: key, body: Array(data))
    }

    public func put(_ key: String, file: URL) async throws {
        guard let input = FileHandle(forReadingAtPath: file.path) else {
            throw VaultError.io(path: file.path, detail: "cannot read")
        }
        defer { try? input.close() }
        let first = try input.read(upToCount: Self.partSize) ?? Data()
        guard first.count == Self.partSize else {
            try await put(key, data: first)
            return
        }
        // Multipart: the object appears only when the upload completes.
        let created = try await send(.POST, key: key, query: [("uploads", "")])
        let createdBody = String(buffer: try await created.body.collect(upTo: 1 << 20))
        guard let uploadID = Self.xmlElements("UploadId", in: createdBody).first else {
            throw VaultError.io(path: name + key, detail: "the S3 server started no multipart upload")
        }
        do {
            var etags: [String] = []
            var part: Data? = first
            while let data = part, !data.isEmpty {
                let response = try await send(
                    .PUT, key: key, query: [("partNumber", String(etags.count + 1)), ("uploadId", uploadID)],
                    body: Array(data))
                guard let etag = response.headers.first(name: "etag") else {
                    throw VaultError.io(
                        path: name + key, detail: "the S3 server sent no ETag for part \(etags.count + 1)")
                }
                etags.append(etag)
                part = try input.read(upToCount: Self.partSize)
            }
            let list = etags.enumerated().map {
                "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(Self.escape($0.element))</ETag></Part>"
            }
            let body = "<CompleteMultipartUpload>\(list.joined())</CompleteMultipartUpload>"
            let done = try await send(.POST, key: key, query: [("uploadId", uploadID)], body: Array(body.utf8))
            // S3 may report a failure inside a 200 answer.
            let text = String(buffer: try await done.body.collect(upTo: 1 << 20))
            if text.contains("<Error>") { throw Failure(status: 200, body: text) }
        } catch {
            _ = try? await send(.DELETE, key: key, query: [("uploadId", uploadID)])
            throw error
        }
    }

    public func get(_ key: String) async throws -> Data {
        let response = try await send(.GET, key: key, accept: [404])
        guard response.status.code != 404 else { throw VaultError.inputMissing(path: name + key) }
        return Data(try await response.body.collect(upTo: 256 << 20).readableBytesView)
    }

    public func read(_ key: String, _ body: @Sendable (UnsafeRawBufferPointer) throws -> Void) async throws {
        let response = try await send(.GET, key: key, accept: [404])
        guard response.status.code != 404 else { throw VaultError.inputMissing(path: name + key) }
        for try await buffer in response.body {
            try buffer.withUnsafeReadableBytes { try body($0) }
        }
    }

    public func list(prefix keyPrefix: String) async throws -> [String] {
        var keys: [String] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix + keyPrefix)]
            if let token { query.append(("continuation-token", token)) }
            let response = try await send(.GET, key: nil, query: query)
            let text = String(buffer: try await response.body.collect(upTo: 64 << 20))
            keys += Self.xmlElements("Key", in: text).map { String($0.dropFirst(prefix.count)) }
            token =
                Self.xmlElements("IsTruncated", in: text).first == "true"
                ? Self.xmlElements("NextContinuationToken", in: text).first : nil
        } while token != nil
        return keys.filter { !$0.hasPrefix("tmp/") }.sorted()
    }

    public func delete(_ key: String) async throws {
        _ = try await send(.DELETE, key: key, accept: [404])
    }

    /// The text of every `<name>…</name>` in an S3 XML answer, unescaped.
    public static func xmlElements(_ name: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(name)>"),
            let close = rest.range(of: "</\(name)>", range: open.upperBound..<rest.endIndex)
        {
            out.append(unescape(String(rest[open.upperBound..<close.lowerBound])))
            rest = rest[close.upperBound...]
        }
        return out
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
