import Crypto
import VaultCore

/// RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256: leaves are hashed with a 0x00 prefix,
/// interior nodes with 0x01, and a tree of n leaves splits at the largest power of two below n.
public enum MerkleTree {
    public typealias Hash = [UInt8]

    public static func leafHash(_ data: some Sequence<UInt8>) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        if let done: Void = data.withContiguousStorageIfAvailable({
            hasher.update(bufferPointer: UnsafeRawBufferPointer($0))
        }) {
            _ = done
        } else {
            hasher.update(data: Array(data))
        }
        return Array(hasher.finalize())
    }

    public static func leafHash(_ data: UnsafeRawBufferPointer) -> Hash { leafDigest(data).bytes }

    /// The leaf hash, held inline (no allocation: the log computes one per entry).
    static func leafDigest(_ data: UnsafeRawBufferPointer) -> InlineHash {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x00)) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: data)
        return InlineHash(hasher.finalize())
    }

    static func nodeDigest(_ left: InlineHash, _ right: InlineHash) -> InlineHash {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x01)) { hasher.update(bufferPointer: $0) }
        left.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        right.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return InlineHash(hasher.finalize())
    }

    /// Lowercase hex (VaultCore's `Hex`).
    public static func hex(_ bytes: some Sequence<UInt8>) -> String { Hex.encode(bytes) }

    public static func nodeHash(_ left: Hash, _ right: Hash) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    /// The root of the tree over `leaves` (leaf hashes); SHA-256 of nothing for no leaves.
    public static func root(_ leaves: ArraySlice<Hash>) -> Hash {
        var range = CompactRange()
        for leaf in leaves { range.append(leaf) }
        return range.root
    }

    /// The largest power of two strictly below `n` (n ≥ 2).
    static func split(_ n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// The audit path of leaf `index` in the tree over `leaves` (RFC 6962 §2.1.1).
    public static func inclusionProof(index: Int, _ leaves: ArraySlice<Hash>) -> [Hash] {
        let n = leaves.count
        guard n > 1 else { return [] }
        let k = split(n)
        let start = leaves.startIndex
        if index < k {
            return inclusionProof(index: index, leaves[start..<(start + k)]) + [root(leaves[(start + k)...])]
        }
        return inclusionProof(index: index - k, leaves[(start + k)...]) + [root(leaves[start..<(start + k)])]
    }

    /// The consistency proof between the first `m` leaves and all of `leaves` (RFC 6962 §2.1.2).
    public static func consistencyProof(from m: Int, _ leaves: ArraySlice<Hash>) -> [Hash] {
        guard m > 0, m < leaves.count else { return [] }
        return subproof(m, leaves, complete: true)
    }

    static func subproof(_ m: Int, _ leaves: ArraySlice<Hash>, complete: Bool) -> [Hash] {
        let n = leaves.count
        if m == n { return complete ? [] : [root(leaves)] }
        let k = split(n)
        let start = leaves.startIndex
        if m <= k {
            return subproof(m, leaves[start..<(start + k)], complete: complete) + [root(leaves[(start + k)...])]
        }
        return subproof(m - k, leaves[(start + k)...], complete: false) + [root(leaves[start..<(start + k)])]
    }

    /// Checks an audit path (RFC 9162 §2.1.3.2).
    public static func verifyInclusion(leaf: Hash, index: Int, size: Int, proof: [Hash], root: Hash) -> Bool {
        guard index >= 0, index < size else { return false }
        var (fn, sn) = (index, size - 1)
        var r = leaf
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// Checks a consistency proof between trees of `first` and `second` leaves (RFC 9162 §2.1.4.2).
    public static func verifyConsistency(first: Int, second: Int, firstRoot: Hash, secondRoot: Hash, proof: [Hash])
        -> Bool
    {
        guard first > 0, first <= second else { return false }
        if first == second { return proof.isEmpty && firstRoot == secondRoot }
        var path = proof
        if first & (first - 1) == 0 { path.insert(firstRoot, at: 0) }  // a power of two: the old root itself
        guard !path.isEmpty else { return false }
        var (fn, sn) = (first - 1, second - 1)
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var (fr, sr) = (path[0], path[0])
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == firstRoot && sr == secondRoot && sn == 0
    }
}

/// The right edge of a Merkle tree: the roots of its perfect subtrees, largest first. Appending
/// a leaf and computing the root take O(log n), so the log never re-reads itself to grow.
public struct CompactRange: Sendable, Equatable {
    /// (leaf count, root) of each perfect subtree, left to right; counts are decreasing powers of two.
    var peaks: [(count: Int, hash: InlineHash)] = []
    public private(set) var size = 0

    public init() {}

    public mutating func append(_ leaf: MerkleTree.Hash) {
        append(InlineHash(leaf))
    }

    mutating func append(_ leaf: InlineHash) {
        var node = (count: 1, hash: leaf)
        while let last = peaks.last, last.count == node.count {
            peaks.removeLast()
            node = (last.count * 2, MerkleTree.nodeDigest(last.hash, node.hash))
        }
        peaks.append(node)
        size += 1
    }

    /// The tree's root (RFC 6962 MTH): the peaks folded from the right.
    public var root: MerkleTree.Hash {
        guard var hash = peaks.last?.hash else { return Array(SHA256.hash(data: [UInt8]())) }
        for peak in peaks.dropLast().reversed() { hash = MerkleTree.nodeDigest(peak.hash, hash) }
        return hash.bytes
    }

    public static func == (a: CompactRange, b: CompactRange) -> Bool {
        a.size == b.size && a.peaks.map(\.hash) == b.peaks.map(\.hash)
    }
}

/// A SHA-256 value held inline, so that appending to the tree allocates nothing per node.
struct InlineHash: Equatable, Sendable {
    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    init(_ digest: SHA256Digest) {
        digest.withUnsafeBytes { source in Swift.withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: source) } }
    }

    init(_ bytes: [UInt8]) { self = bytes.withUnsafeBytes { InlineHash($0) } }

    init(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "a SHA-256 hash has 32 bytes")
        Swift.withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: bytes) }
    }

    var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words) { try body($0) }
    }

    static func == (a: InlineHash, b: InlineHash) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }
}
