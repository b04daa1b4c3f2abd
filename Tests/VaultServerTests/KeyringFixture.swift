import Foundation
import Keyring
import VaultCore

enum KeyringFixture {
    /// Opens the fixture vault's keyring with two of its shares.
    static func open(_ f: ServerFixture) throws -> Keyring {
        let file = try KeyringFile.load(from: f.root.appendingPathComponent("vault/keyring.json"))
        let shares = try f.shares.prefix(2).map { try UnsealShare(text: $0) }
        var progress = UnsealProgress(vaultID: Hex.decode(file.vaultID)!, threshold: 2)
        var key: [UInt8] = []
        for share in shares {
            if case .complete(let k) = try progress.add(share) { key = k }
        }
        return try file.open(unsealKey: key).keyring
    }
}
