import Crypto
import Foundation
import Keyring
import ModelFormats
import VaultCore
import Watermark

/// Who a fingerprinted copy is for: the recipient code it carries is derived from this name
/// (docs/watermark.md, "Fingerprints").
public enum Recipient {
    /// An account that logged in.
    public static func user(_ name: String) -> String { "user:\(name)" }
    /// An API token (codes follow the token, so trace names the token as well as its owner).
    public static func token(_ id: String) -> String { "token:\(id)" }
    /// Someone outside the vault a copy is handed to (`mvault pull --recipient NAME`).
    public static func offline(_ name: String) throws -> String {
        guard (1...128).contains(name.count),
            name.unicodeScalars.allSatisfy({ !$0.properties.isWhitespace || $0 == " " }),
            !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }),
            name.trimmingCharacters(in: .whitespaces) == name
        else {
            throw VaultError.invalidArgument(
                "a recipient name is 1 to 128 characters, without control characters or surrounding spaces")
        }
        return "offline:\(name)"
    }
}

/// How a model file takes fingerprints: its tensors and row order, parsed once from its header.
public struct MarkableLayout: Sendable {
    public let tensors: [TensorLayout]
    public let rowOrder: RowOrder
}

/// Fingerprinted copies of a file: a recipient's copy carries the owner mark shared by every
/// copy of the model and the recipient's own code, both derived from the vault's watermark
/// secret; it is marked as it is read, so nothing marked is ever stored.
public struct FingerprintKeys: Sendable {
    public let owner: WatermarkKey
    public let recipient: WatermarkKey

    public init(secret: [UInt8], model: String, version: Int, recipient: String) {
        owner = WatermarkKey.owner(secret: secret, model: model)
        self.recipient = WatermarkKey.recipient(secret: secret, recipient: recipient, model: model, version: version)
    }

    public func marker(_ layout: MarkableLayout) -> Marker {
        Marker(keys: [owner, recipient], rowOrder: layout.rowOrder)
    }

    /// The strong ETag of the recipient's copy of a file with plaintext SHA-256 `sha256`: a
    /// digest of the file's and both keys' identities, so each recipient's copy has its own and
    /// the keys cannot be recovered from it.
    public func entityTag(sha256: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Array("mvault marked copy v1\u{0}\(sha256)\u{0}".utf8))
        hasher.update(data: owner.bytes)
        hasher.update(data: recipient.bytes)
        hasher.update(data: withUnsafeBytes(of: Watermarking.defaultStrength.bitPattern.littleEndian) { Array($0) })
        return "m1-" + Hex.encode(Array(hasher.finalize()))
    }
}

extension LocalVault {
    /// The layout of a model file that takes fingerprints — a file named `*.safetensors` or
    /// `*.gguf`, or starting with GGUF's magic — or nil for any other file (configs,
    /// tokenizers, pickles), which is served as it is, and for a model without a matrix to mark.
    /// - Throws: `VaultError.unmarkable` when the file should be a model file but does not parse.
    public func markableLayout(_ file: FileRecord, of version: VersionRecord, opened: OpenedFile) throws
        -> MarkableLayout?
    {
        let named = file.path.hasSuffix(".safetensors") || file.path.hasSuffix(".gguf")
        let gguf = try opened.size >= 4 && opened.bytes(at: 0, count: 4) == Array("GGUF".utf8)
        guard named || gguf else { return nil }
        do {
            let (_, tensors, parsed) = try ModelFile.open(opened)
            guard tensors.contains(where: Watermarking.isMarkable) else { return nil }
            return MarkableLayout(tensors: tensors, rowOrder: parsed.map(RowOrder.init(gguf:)) ?? .identity)
        } catch let error as ModelFormatError {
            throw VaultError.unmarkable(file: "\(version.model)@\(version.number)/\(file.path)", detail: "\(error)")
        }
    }

    /// The keys of `recipient`'s copies of `version`.
    public func fingerprintKeys(_ version: VersionRecord, recipient: String) throws -> FingerprintKeys {
        FingerprintKeys(
            secret: try keys.watermarkSecret(), model: version.model, version: version.number, recipient: recipient)
    }
}

/// An opened sealed file is a byte source: model parsers read its header and markers its rows,
/// decrypting only the segments they touch.
extension LocalVault.OpenedFile: ByteSource {
    public var size: UInt64 { reader.plaintextSize }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard offset <= size, UInt64(buffer.count) <= size - offset else {
            throw ModelFormatError.truncated("a read of \(buffer.count) bytes at offset \(offset)")
        }
        var filled = 0
        try read(offset..<(offset + UInt64(buffer.count))) { bytes in
            UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<(filled + bytes.count)]).copyMemory(from: bytes)
            filled += bytes.count
        }
    }
}
