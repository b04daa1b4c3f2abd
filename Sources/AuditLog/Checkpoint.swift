import Crypto
import Foundation

/// A signed tree head in the C2SP tlog-checkpoint format (a C2SP signed note):
///
///     <origin>\n<size>\n<base64 root hash>\n\n— <key name> <base64(key hash ‖ Ed25519 signature)>\n
///
/// The signature covers the note text (the first three lines, each ending in \n). The key hash
/// is the first four bytes of SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key), as for Go's
/// golang.org/x/mod/sumdb/note Ed25519 keys.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: Int
    public var root: MerkleTree.Hash

    public init(origin: String, size: Int, root: MerkleTree.Hash) {
        self.origin = origin
        self.size = size
        self.root = root
    }

    /// The signed body.
    public var text: String { "\(origin)\n\(size)\n\(Data(root).base64EncodedString())\n" }

    public func signed(by key: CheckpointKey, cosigners: [any NoteSigner] = []) throws -> String {
        try SignedNote.sign(text, by: [key] + cosigners)
    }

    /// Parses a signed checkpoint and checks its signature by `key`.
    public static func verify(_ note: String, key: CheckpointVerifier) throws(AuditLogError) -> Checkpoint {
        let body = try SignedNote.open(note, key: key, what: "checkpoint")
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 3, let size = Int(lines[1]), size >= 0,
            let root = Data(base64Encoded: String(lines[2])), root.count == 32
        else { throw .badCheckpoint("expected origin, tree size and a base64 SHA-256 root") }
        return Checkpoint(origin: String(lines[0]), size: size, root: Array(root))
    }
}

/// A C2SP signed note: a text of lines each ending in \n, a blank line, and signature lines
/// `— <key name> <base64(key hash ‖ Ed25519 signature)>`. Checkpoints and backup manifests are
/// signed notes.
public enum SignedNote {
    public static func sign(_ text: String, by key: any NoteSigner) throws -> String {
        try sign(text, by: [key])
    }

    /// `text` with one signature line per signer, in order.
    public static func sign(_ text: String, by signers: [any NoteSigner]) throws -> String {
        var note = text + "\n"
        for signer in signers {
            let signature = try signer.signature(for: Array(text.utf8))
            let verifier = signer.verifier
            note += "— \(verifier.name) \(Data(verifier.keyHash + signature).base64EncodedString())\n"
        }
        return note
    }

    /// The text of `note` once its signature by `key` checks; `what` names the note in errors.
    public static func open(_ note: String, key: CheckpointVerifier, what: String) throws(AuditLogError) -> String {
        guard let split = note.range(of: "\n\n") else { throw .badCheckpoint("no blank line before the signature") }
        let body = String(note[..<split.lowerBound]) + "\n"
        for line in note[split.upperBound...].split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "—", parts[1] == key.name,
                let blob = Data(base64Encoded: String(parts[2])), blob.count > 4, Array(blob.prefix(4)) == key.keyHash
            else { continue }
            guard key.isValidSignature(Array(blob.dropFirst(4)), for: Array(body.utf8)) else {
                throw .badSignature("the \(what)'s signature by \(key.name) does not verify")
            }
            return body
        }
        throw .badSignature("the \(what) carries no signature by \(key.name)")
    }
}

/// Something that signs note texts: an Ed25519 key in memory, or a key inside an HSM.
public protocol NoteSigner: Sendable {
    var verifier: CheckpointVerifier { get }
    /// The signature of `text`, as the note signature type of `verifier` defines it.
    func signature(for text: [UInt8]) throws -> [UInt8]
}

/// The key that signs checkpoints: Ed25519, from a 32-byte seed the keyring derives.
public struct CheckpointKey: NoteSigner {
    public let name: String
    let privateKey: Curve25519.Signing.PrivateKey

    public init(name: String, seed: [UInt8]) throws {
        self.name = name
        privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
    }

    public var verifier: CheckpointVerifier { CheckpointVerifier(name: name, publicKey: privateKey.publicKey) }
    var keyHash: [UInt8] { verifier.keyHash }

    public func signature(for text: [UInt8]) throws -> [UInt8] { Array(try privateKey.signature(for: text)) }
}

/// What verifying a signed note needs: the key's name and public key, written as a note verifier
/// key `name+hash+base64(type ‖ key)` (hash: the key ID in hex). Type 0x01 is Ed25519 (the
/// 32-byte key); type 0x02 is ECDSA P-256 with SHA-256 as C2SP signed-note assigns it (the key as
/// DER SubjectPublicKeyInfo, the signature DER, the key ID the first 4 bytes of SHA-256 of the
/// SPKI).
public struct CheckpointVerifier: Sendable {
    public enum Key: Sendable {
        case ed25519(Curve25519.Signing.PublicKey)
        case ecdsaP256(P256.Signing.PublicKey)
    }

    public let name: String
    public let key: Key

    public init(name: String, publicKey: Curve25519.Signing.PublicKey) {
        self.name = name
        key = .ed25519(publicKey)
    }

    public init(name: String, ecdsa publicKey: P256.Signing.PublicKey) {
        self.name = name
        key = .ecdsaP256(publicKey)
    }

    /// The signature type byte and the key's encoding.
    var typedKey: [UInt8] {
        switch key {
        case .ed25519(let k): [0x01] + Array(k.rawRepresentation)
        case .ecdsaP256(let k): [0x02] + Array(k.derRepresentation)
        }
    }

    /// The key's bytes (for an identifier derived from it).
    public var keyBytes: [UInt8] { Array(typedKey.dropFirst()) }

    public var keyHash: [UInt8] {
        var hasher = SHA256()
        switch key {
        case .ed25519: hasher.update(data: Array((name + "\n").utf8) + typedKey)
        case .ecdsaP256(let k): hasher.update(data: Array(k.derRepresentation))
        }
        return Array(hasher.finalize().prefix(4))
    }

    public var encoded: String {
        "\(name)+\(MerkleTree.hex(keyHash))+\(Data(typedKey).base64EncodedString())"
    }

    func isValidSignature(_ signature: [UInt8], for text: [UInt8]) -> Bool {
        switch key {
        case .ed25519(let k): return signature.count == 64 && k.isValidSignature(signature, for: text)
        case .ecdsaP256(let k):
            guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(parsed, for: text)
        }
    }

    public init(encoded: String) throws(AuditLogError) {
        // The name holds no "+"; the base64 key data may.
        let parts = encoded.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "+", maxSplits: 2)
        guard parts.count == 3, let blob = Data(base64Encoded: String(parts[2])), let type = blob.first else {
            throw .badCheckpoint("not a verifier key (name+hash+base64 key)")
        }
        if type == 1, blob.count == 33, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: blob.dropFirst())
        {
            self.init(name: String(parts[0]), publicKey: key)
        } else if type == 2, let key = try? P256.Signing.PublicKey(derRepresentation: blob.dropFirst()) {
            self.init(name: String(parts[0]), ecdsa: key)
        } else {
            throw .badCheckpoint("not a verifier key (name+hash+base64 Ed25519 or ECDSA P-256 key)")
        }
        guard MerkleTree.hex(keyHash) == parts[1] else {
            throw .badCheckpoint("the verifier key's hash does not match its key")
        }
    }
}

public enum AuditLogError: Error, Equatable, CustomStringConvertible {
    case badCheckpoint(String)
    case badSignature(String)
    case unavailable(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .badCheckpoint(let detail): "invalid checkpoint: \(detail)"
        case .badSignature(let detail): detail
        case .unavailable(let detail): "the audit log cannot record events: \(detail)"
        case .corrupt(let detail): "the audit log is damaged: \(detail)"
        }
    }
}
