import Crypto
import Keyring

/// Incremental SHA-256 with a hex result.
struct SHA256Stream {
    var hasher = SHA256()
    mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    func hex() -> String { Hex.encode(hasher.finalize()) }
}
