/// The query of `GET /v1/audit/proof/inclusion`: entry `index` in the tree of the first `size`.
public struct InclusionProofQuery: Sendable, Equatable {
    public let index: Int
    public let size: Int

    /// - Parameter logSize: the entries the log holds now (the default tree size).
    public init(index: String?, size: String?, logSize: Int) throws(RequestError) {
        guard logSize > 0 else { throw RequestError("the audit log holds no entries yet") }
        self.size = try QueryNumber.parse(size, name: "size", in: 1...logSize, fallback: logSize)
        self.index = try QueryNumber.parse(index, name: "index", in: 0...(self.size - 1))
    }
}

/// The query of `GET /v1/audit/proof/consistency`: from the tree of `first` entries to `second`.
public struct ConsistencyProofQuery: Sendable, Equatable {
    public let first: Int
    public let second: Int

    public init(first: String?, second: String?, logSize: Int) throws(RequestError) {
        guard logSize > 0 else { throw RequestError("the audit log holds no entries yet") }
        self.second = try QueryNumber.parse(second, name: "second", in: 1...logSize, fallback: logSize)
        self.first = try QueryNumber.parse(first, name: "first", in: 1...self.second)
    }
}

/// The query of `GET /v1/audit/entries`: `limit` entries from `start` (default: the last ones).
public struct AuditEntriesQuery: Sendable, Equatable {
    public static let maxLimit = 10_000
    public let start: Int
    public let limit: Int

    public init(start: String?, limit: String?, logSize: Int) throws(RequestError) {
        self.limit = try QueryNumber.parse(limit, name: "limit", in: 1...Self.maxLimit, fallback: 100)
        self.start = try QueryNumber.parse(
            start, name: "start", in: 0...max(0, logSize), fallback: max(0, logSize - self.limit))
    }
}
