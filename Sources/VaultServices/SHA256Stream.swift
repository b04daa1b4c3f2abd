import Crypto
import Keyring
import VaultCore

/// Incremental SHA-256 with a hex result, counting what it was fed.
public struct SHA256Stream: Sendable {
    var hasher = SHA256()
    public private(set) var count: UInt64 = 0
    public init() {}
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
        count += UInt64(bytes.count)
    }
    public func hex() -> String { Hex.encode(hasher.finalize()) }
}
