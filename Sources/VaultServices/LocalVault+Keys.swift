import Foundation
import Keyring
import SealedFormat
import Storage
import VaultCore

/// A stored file and the KEK version its data key is wrapped under.
public struct WrappedFile: Sendable, Hashable {
    public var name: String
    public var blobID: String
    public var kekVersion: UInt32
}

/// One file that failed `verify`, and what to do about it.
public struct VerifyFailure: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var error: String
    public var hint: String?
    public var description: String { "\(file): \(error)" }
}

extension LocalVault {
    /// Every stored file of every version with the KEK version it is wrapped under (read from
    /// blob headers only). Versions that share a blob are each listed, so none is left out of a
    /// list of what a key change touches.
    public func wrappedFiles() throws -> [WrappedFile] {
        try keys.requireUnsealed()
        var out: [WrappedFile] = []
        var versions: [String: UInt32] = [:]
        for model in try metadata.models(namespace: nil) {
            let name = try ModelName(parsing: model.name)
            for version in try metadata.versions(of: name) {
                for file in version.files {
                    let label = "\(name)@\(version.number)/\(file.path)"
                    let kek = try versions[file.blobID] ?? readHeader(file.blobID, name: label).stanza.kekVersion
                    versions[file.blobID] = kek
                    out.append(WrappedFile(name: label, blobID: file.blobID, kekVersion: kek))
                }
            }
        }
        return out
    }

    /// Files still wrapped under a retired KEK version.
    public func filesUnderRetiredKeys() throws -> [WrappedFile] {
        let floor = try keys.minimumDecryptionVersion()
        return try wrappedFiles().filter { $0.kekVersion < floor }
    }

    /// Rewraps every data key not under the newest KEK version, leaving payloads untouched.
    /// - Returns: how many files were rewrapped.
    @discardableResult
    public func rewrap(progress: ((String) -> Void)? = nil) throws -> Int {
        try keys.requireUnsealed()
        return try withWriteLock {
            let newest = try keys.newestVersion()
            var count = 0
            var done = Set<String>()
            for file in try wrappedFiles() where file.kekVersion != newest && done.insert(file.blobID).inserted {
                try rewrap(file)
                count += 1
                progress?(file.name)
            }
            return count
        }
    }

    func rewrap(_ file: WrappedFile) throws {
        let reader = try blobs.open(file.blobID)
        let header = try readHeader(file.blobID, name: file.name)
        let newHeader = try mapSealedErrors(file: file.name, blobID: file.blobID) {
            let dataKey = try keys.unwrap(header.stanza, headerPrefix: header.prefix, forRewrap: true)
            return try header.rewrapped(dataKey: dataKey) { try keys.wrap(dataKey: dataKey, headerPrefix: $0) }
        }
        let writer = try blobs.makeWriter()
        var committed = false
        defer { if !committed { writer.abort() } }
        try newHeader.encoded.withUnsafeBytes { try writer.write($0) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var offset = UInt64(SealedHeader.size)
        while offset < reader.size {
            let n = Int(min(UInt64(buffer.count), reader.size - offset))
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            try reader.read(at: offset, into: chunk)
            try writer.write(UnsafeRawBufferPointer(chunk))
            offset += UInt64(n)
        }
        try writer.commit(as: file.blobID)
        committed = true
    }

    func readHeader(_ blobID: String, name: String) throws -> SealedHeader {
        try mapSealedErrors(file: name, blobID: blobID) {
            let reader = try blobs.open(blobID)
            var head = [UInt8](repeating: 0, count: min(SealedHeader.size, Int(reader.size)))
            try head.withUnsafeMutableBytes { try reader.read(at: 0, into: $0) }
            return try SealedHeader.parse(head)
        }
    }

    /// Authenticates every segment of every stored file and checks each plaintext SHA-256.
    /// - Returns: the files that failed, each with its error (empty when all is well).
    public func verify(progress: ((String) -> Void)? = nil) throws -> (checked: Int, failures: [VerifyFailure]) {
        try keys.requireUnsealed()
        var failures: [VerifyFailure] = []
        var checked = 0
        for model in try metadata.models(namespace: nil) {
            let name = try ModelName(parsing: model.name)
            for version in try metadata.versions(of: name) {
                for file in version.files {
                    let label = "\(name)@\(version.number)/\(file.path)"
                    progress?(label)
                    checked += 1
                    do {
                        try withReader(file, named: label) { reader in
                            var hasher = SHA256Stream()
                            try mapSealedErrors(file: label, blobID: file.blobID) {
                                try reader.read(0..<reader.plaintextSize) { hasher.update($0) }
                            }
                            guard hasher.hex() == file.sha256, reader.plaintextSize == file.size else {
                                throw VaultError.integrity(
                                    file: label, detail: "SHA-256 differs from the recorded digest")
                            }
                        }
                    } catch let error as VaultError {
                        failures.append(VerifyFailure(file: label, error: error.description, hint: error.hint))
                    }
                }
            }
        }
        return (checked, failures)
    }
}
