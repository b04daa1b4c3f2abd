import AuditLog
import Crypto
import Foundation
import Testing

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite("Audit log: RFC 6962 Merkle tree")
struct MerkleTreeTests {
    /// The RFC 6962 reference implementation's test leaves and roots (certificate-transparency).
    static let leaves: [[UInt8]] = [
        [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43], Array(0x50...0x57),
        Array(0x60...0x6F),
    ]
    static let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]

    @Test("roots match the RFC 6962 reference vectors, incrementally and at once")
    func vectors() {
        var range = CompactRange()
        #expect(hex(range.root) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        for (i, leaf) in Self.leaves.enumerated() {
            range.append(MerkleTree.leafHash(leaf))
            #expect(hex(range.root) == Self.roots[i], "size \(i + 1)")
            #expect(hex(MerkleTree.root(Self.leaves[0...i].map { MerkleTree.leafHash($0) }[...])) == Self.roots[i])
        }
    }

    @Test("every inclusion and consistency proof up to 40 leaves verifies; altered ones do not")
    func proofs() {
        let leaves = (0..<40).map { MerkleTree.leafHash([UInt8(truncatingIfNeeded: $0), 7]) }
        for n in 1...40 {
            let tree = leaves[0..<n]
            let root = MerkleTree.root(tree)
            for i in 0..<n {
                let proof = MerkleTree.inclusionProof(index: i, tree)
                #expect(MerkleTree.verifyInclusion(leaf: leaves[i], index: i, size: n, proof: proof, root: root))
                #expect(
                    !MerkleTree.verifyInclusion(leaf: leaves[(i + 1) % 40], index: i, size: n, proof: proof, root: root)
                )
                if let first = proof.first {
                    var bad = proof
                    bad[0] = MerkleTree.nodeHash(first, first)
                    #expect(!MerkleTree.verifyInclusion(leaf: leaves[i], index: i, size: n, proof: bad, root: root))
                }
            }
            for m in 1...n {
                let proof = MerkleTree.consistencyProof(from: m, tree)
                let old = MerkleTree.root(leaves[0..<m])
                #expect(
                    MerkleTree.verifyConsistency(first: m, second: n, firstRoot: old, secondRoot: root, proof: proof),
                    "\(m) → \(n)")
                if m < n {
                    let other = MerkleTree.root(leaves[1..<(m + 1)])
                    #expect(
                        !MerkleTree.verifyConsistency(
                            first: m, second: n, firstRoot: other, secondRoot: root, proof: proof))
                }
            }
        }
    }
}

@Suite("Audit log: signed checkpoints (C2SP tlog-checkpoint)")
struct CheckpointTests {
    @Test("a checkpoint is signed in the signed-note format and verifies only unchanged, with its key")
    func signAndVerify() throws {
        let key = try CheckpointKey(name: "vault.example/audit", seed: [UInt8](repeating: 3, count: 32))
        let checkpoint = Checkpoint(origin: "vault.example/audit", size: 42, root: [UInt8](repeating: 9, count: 32))
        let note = try checkpoint.signed(by: key)
        let lines = note.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "vault.example/audit")
        #expect(lines[1] == "42")
        #expect(lines[2] == Substring(Data(repeating: 9, count: 32).base64EncodedString()))
        #expect(lines[3] == "")
        #expect(lines[4].hasPrefix("— vault.example/audit "))
        #expect(try Checkpoint.verify(note, key: key.verifier) == checkpoint)
        // The verifier key round-trips through its text form.
        let verifier = try CheckpointVerifier(encoded: key.verifier.encoded)
        #expect(try Checkpoint.verify(note, key: verifier) == checkpoint)
        #expect(key.verifier.encoded.hasPrefix("vault.example/audit+"))
        // Keys whose base64 holds "+" parse too.
        for seed in 0..<64 {
            let k = try CheckpointKey(name: "n", seed: [UInt8](repeating: UInt8(seed), count: 32))
            #expect(try CheckpointVerifier(encoded: k.verifier.encoded).keyBytes == k.verifier.keyBytes)
        }

        // A cosigner with an ECDSA P-256 key (C2SP type 0x02): each key verifies its own line.
        struct P256Signer: NoteSigner {
            let key = P256.Signing.PrivateKey()
            var verifier: CheckpointVerifier { CheckpointVerifier(name: "vault.example/hsm", ecdsa: key.publicKey) }
            func signature(for text: [UInt8]) throws -> [UInt8] {
                Array(try key.signature(for: text).derRepresentation)
            }
        }
        let hsm = P256Signer()
        let cosigned = try Checkpoint(origin: "vault.example/log", size: 42, root: Array(repeating: 7, count: 32))
            .signed(by: key, cosigners: [hsm])
        #expect(cosigned.split(separator: "\n").filter { $0.hasPrefix("— ") }.count == 2)
        #expect(try Checkpoint.verify(cosigned, key: key.verifier).size == 42)
        #expect(try Checkpoint.verify(cosigned, key: hsm.verifier).size == 42)
        let parsed = try CheckpointVerifier(encoded: hsm.verifier.encoded)
        #expect(parsed.keyBytes == Array(hsm.key.publicKey.derRepresentation))
        #expect(parsed.keyHash == Array(SHA256.hash(data: hsm.key.publicKey.derRepresentation).prefix(4)))
        #expect(throws: AuditLogError.self) {
            try Checkpoint.verify(cosigned.replacingOccurrences(of: "\n42\n", with: "\n43\n"), key: hsm.verifier)
        }

        let edited = note.replacingOccurrences(of: "\n42\n", with: "\n41\n")
        #expect(throws: AuditLogError.self) { try Checkpoint.verify(edited, key: key.verifier) }
        let other = try CheckpointKey(name: "vault.example/audit", seed: [UInt8](repeating: 4, count: 32))
        #expect(throws: AuditLogError.self) { try Checkpoint.verify(note, key: other.verifier) }
        #expect(throws: AuditLogError.self) { try Checkpoint.verify("vault\n1\n", key: key.verifier) }
        #expect(throws: AuditLogError.self) { try CheckpointVerifier(encoded: "nonsense") }
    }
}
