import Foundation

/// One file inside a model version, as recorded in the metadata store.
public struct FileRecord: Hashable, Sendable, Codable {
    /// Relative file name inside the version (`model.safetensors`).
    public var path: String
    /// Plaintext size in bytes.
    public var size: UInt64
    /// Plaintext SHA-256, lowercase hex.
    public var sha256: String
    /// Content address of the sealed blob holding the file.
    public var blobID: String

    public init(path: String, size: UInt64, sha256: String, blobID: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.blobID = blobID
    }
}

/// One immutable version of a model.
public struct VersionRecord: Hashable, Sendable, Codable {
    public var model: String
    public var number: Int
    public var note: String?
    public var createdAt: Date
    public var files: [FileRecord]

    public init(model: String, number: Int, note: String?, createdAt: Date, files: [FileRecord]) {
        self.model = model
        self.number = number
        self.note = note
        self.createdAt = createdAt
        self.files = files
    }

    public var totalSize: UInt64 { files.reduce(0) { $0 + $1.size } }
}

/// A model with a summary of its versions, as listed by `mvault ls`.
public struct ModelSummary: Hashable, Sendable, Codable {
    public var name: String
    public var versionCount: Int
    public var latestVersion: Int?
    public var updatedAt: Date?

    public init(name: String, versionCount: Int, latestVersion: Int?, updatedAt: Date?) {
        self.name = name
        self.versionCount = versionCount
        self.latestVersion = latestVersion
        self.updatedAt = updatedAt
    }
}

/// One download of one model file: who got it, when, which fingerprint it carried, and what
/// was sent. Recorded before the first byte leaves, so an interrupted download is on record too.
public struct DownloadRecord: Hashable, Sendable, Codable {
    /// Assigned by the store.
    public var id: Int64
    public var at: Date
    public var model: String
    public var version: Int
    public var path: String
    /// The stored original's SHA-256.
    public var fileSHA256: String
    /// The account, or nil for a pull on the vault's own host (`mvault pull --vault`).
    public var user: String?
    /// The API token used, if any.
    public var tokenID: String?
    public var sourceIP: String?
    /// Whose recipient code the copy carries — `user:NAME`, `token:ID` or `offline:NAME` — or
    /// nil when the unmarked original was sent.
    public var recipient: String?
    /// The bytes sent: a Range request sends part of the file.
    public var rangeStart: UInt64
    public var rangeEnd: UInt64
    /// SHA-256 of the whole file as sent, once a download has sent all of it.
    public var sentSHA256: String?

    public init(
        id: Int64 = 0, at: Date, model: String, version: Int, path: String, fileSHA256: String, user: String?,
        tokenID: String?, sourceIP: String?, recipient: String?, rangeStart: UInt64, rangeEnd: UInt64,
        sentSHA256: String? = nil
    ) {
        self.id = id
        self.at = at
        self.model = model
        self.version = version
        self.path = path
        self.fileSHA256 = fileSHA256
        self.user = user
        self.tokenID = tokenID
        self.sourceIP = sourceIP
        self.recipient = recipient
        self.rangeStart = rangeStart
        self.rangeEnd = rangeEnd
        self.sentSHA256 = sentSHA256
    }
}
