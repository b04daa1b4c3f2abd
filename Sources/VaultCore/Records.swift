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
