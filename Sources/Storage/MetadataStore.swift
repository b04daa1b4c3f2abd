import Foundation
import VaultCore

/// Models, versions and files: everything about the vault's contents except the bytes.
///
/// Error contract: throws `VaultError` — `.unknownModel`, `.unknownVersion`, `.noVersions` for
/// lookups that find nothing, `.io`/`.noSpace` for storage failures. Every mutating method is one
/// transaction: it happens completely or not at all.
public protocol MetadataStore: Sendable {
    /// Records a new version of `model` (creating the model on first push), numbered one past the
    /// highest number the model has ever had; numbers of removed versions are never reused.
    func addVersion(model: ModelName, note: String?, files: [FileRecord], createdAt: Date) throws
        -> VersionRecord
    /// Models, sorted by name, optionally only those in `namespace`.
    func models(namespace: String?) throws -> [ModelSummary]
    /// Every version of `model`, oldest first, with their files.
    func versions(of model: ModelName) throws -> [VersionRecord]
    /// Version `number` of `model`, or its latest version when `number` is nil.
    func version(of model: ModelName, number: Int?) throws -> VersionRecord
    /// Removes one version and returns what it held.
    func deleteVersion(of model: ModelName, number: Int) throws -> VersionRecord
    /// Every blob id some version still refers to.
    func referencedBlobIDs() throws -> Set<String>

    /// Records a download (its `id` is ignored) and returns the id it was given.
    func recordDownload(_ download: DownloadRecord) throws -> Int64
    /// Records the SHA-256 of everything download `id` sent, once it sent the whole file.
    func completeDownload(id: Int64, sentSHA256: String) throws
    /// Downloads, oldest first: of one model, or of every model when `model` is nil.
    func downloads(of model: ModelName?) throws -> [DownloadRecord]
    /// The SHA-256 of the copy of the file with plaintext digest `fileSHA256` that carries
    /// `recipient`'s code (nil: the original), if a download has sent all of it.
    func sentDigest(fileSHA256: String, recipient: String?) throws -> String?
}
