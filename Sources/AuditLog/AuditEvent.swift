import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One security-relevant action, as one log entry. Secrets are never in it; values an auditor
/// must correlate but not read (session ids) are keyed HMACs (`AuditHasher`).
public struct AuditEvent: Codable, Sendable, Equatable {
    /// Position in the log, from 0; set by the log when the event is appended.
    public var seq: Int
    /// Hex leaf hash of the entry before (empty for the first); set by the log. An edited,
    /// removed or inserted entry breaks this chain at the next entry, which names it.
    public var prev: String
    public var time: Date
    /// `request` before a request is served (with the decision), `response` after it (with the
    /// result), `alert` for the vault's own findings.
    public var phase: String
    /// Ties the request and response entries of one request together.
    public var requestID: String
    /// The route (`GET /v1/models/{namespace}/{name}`), or a name such as `auth.login`.
    public var action: String
    public var actor: Actor
    public var sourceIP: String?
    public var target: Target?
    public var decision: Decision?
    public var result: Result?
    /// HMAC-SHA256 of values that must not be readable, by field name (`hmac-sha256:HEX`).
    public var hashed: [String: String]?

    public struct Actor: Codable, Sendable, Equatable {
        public var user: String?
        public var tokenID: String?
        /// Serial of the client certificate that authenticated the connection.
        public var certificate: String?
        public init(user: String? = nil, tokenID: String? = nil, certificate: String? = nil) {
            self.user = user
            self.tokenID = tokenID
            self.certificate = certificate
        }

        func write(_ w: inout CanonicalJSON) {
            w.object { o in
                if let certificate { o.field("certificate") { $0.string(certificate) } }
                if let tokenID { o.field("tokenID") { $0.string(tokenID) } }
                if let user { o.field("user") { $0.string(user) } }
            }
        }
    }

    public struct Target: Codable, Sendable, Equatable {
        public var model: String?
        public var version: Int?
        public var file: String?
        /// Plaintext SHA-256 of the file(s) concerned.
        public var sha256: [String]?
        /// Anything else the action is about (a user, role, grant or token id).
        public var name: String?
        public init(
            model: String? = nil, version: Int? = nil, file: String? = nil, sha256: [String]? = nil, name: String? = nil
        ) {
            self.model = model
            self.version = version
            self.file = file
            self.sha256 = sha256
            self.name = name
        }

        func write(_ w: inout CanonicalJSON) {
            w.object { o in
                if let file { o.field("file") { $0.string(file) } }
                if let model { o.field("model") { $0.string(model) } }
                if let name { o.field("name") { $0.string(name) } }
                if let sha256 { o.field("sha256") { w in w.array(sha256) { $0.string($1) } } }
                if let version { o.field("version") { $0.integer(version) } }
            }
        }
    }

    public struct Decision: Codable, Sendable, Equatable {
        public var allowed: Bool
        /// The rule that decided ("role consumer allows pull on *", "grant g1 denies…").
        public var rule: String
        public init(allowed: Bool, rule: String) {
            self.allowed = allowed
            self.rule = rule
        }

        func write(_ w: inout CanonicalJSON) {
            w.object { o in
                o.field("allowed") { $0.raw(allowed ? "true" : "false") }
                o.field("rule") { $0.string(rule) }
            }
        }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var status: Int
        public var bytes: UInt64?
        public var error: String?
        public init(status: Int, bytes: UInt64? = nil, error: String? = nil) {
            self.status = status
            self.bytes = bytes
            self.error = error
        }

        func write(_ w: inout CanonicalJSON) {
            w.object { o in
                if let bytes { o.field("bytes") { $0.raw(String(bytes)) } }
                if let error { o.field("error") { $0.string(error) } }
                o.field("status") { $0.integer(status) }
            }
        }
    }

    public init(
        time: Date = Date(), phase: String, requestID: String, action: String, actor: Actor, sourceIP: String? = nil,
        target: Target? = nil, decision: Decision? = nil, result: Result? = nil, hashed: [String: String]? = nil
    ) {
        seq = -1
        prev = ""
        self.time = time
        self.phase = phase
        self.requestID = requestID
        self.action = action
        self.actor = actor
        self.sourceIP = sourceIP
        self.target = target
        self.decision = decision
        self.result = result
        self.hashed = hashed
    }

    /// The entry's canonical bytes (the Merkle leaf): JSON, keys sorted, times in RFC 3339 with
    /// milliseconds, one line.
    public func encoded() throws -> [UInt8] { encodedParts().line(prev: prev, seq: seq) }

    /// The entry's bytes around `prev` and `seq`, which only the log knows when it appends: the
    /// rest is encoded by whoever records the event, so the log's single writer does little.
    public func encodedParts() -> EncodedEvent {
        var w = CanonicalJSON()
        var prevAt = 0
        var seqAt = 0
        w.object { o in
            o.field("action") { $0.string(action) }
            o.field("actor") { actor.write(&$0) }
            if let decision { o.field("decision") { decision.write(&$0) } }
            if let hashed {
                o.field("hashed") { w in
                    w.object { o in
                        // Usually one (the session): sorted only when there are several.
                        if hashed.count == 1, let (key, value) = hashed.first {
                            o.field(named: key) { $0.string(value) }
                            return
                        }
                        for key in hashed.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                            o.field(named: key) { $0.string(hashed[key]!) }
                        }
                    }
                }
            }
            o.field("phase") { $0.string(phase) }
            o.field("prev") {
                $0.string("")
                prevAt = $0.bytes.count - 1
            }
            o.field("requestID") { $0.string(requestID) }
            if let result { o.field("result") { result.write(&$0) } }
            o.field("seq") { seqAt = $0.bytes.count }
            if let sourceIP { o.field("sourceIP") { $0.string(sourceIP) } }
            if let target { o.field("target") { target.write(&$0) } }
            o.field("time") { w in
                w.bytes.append(UInt8(ascii: "\""))
                Timestamp.write(time, to: &w.bytes)
                w.bytes.append(UInt8(ascii: "\""))
            }
        }
        return EncodedEvent(bytes: w.bytes, prevAt: prevAt, seqAt: seqAt)
    }

    public static func decode(_ line: some Sequence<UInt8>) throws -> AuditEvent {
        try decoder.decode(AuditEvent.self, from: Data(line))
    }

    /// Reads events as the log stores them (times to the millisecond), in any JSON around them.
    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "not a time like 2026-11-29T22:00:01.250Z"))
            }
            return date
        }
        return d
    }()

}
