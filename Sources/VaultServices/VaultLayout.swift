import Foundation
import VaultCore

/// Where each part of a local vault lives inside its directory.
public struct VaultLayout: Sendable {
    public let root: URL

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    public var keyringFile: URL { root.appendingPathComponent("keyring.json") }
    public var metadataFile: URL { root.appendingPathComponent("metadata.sqlite") }
    public var runDirectory: URL { root.appendingPathComponent("run") }
    public var agentSocket: URL { runDirectory.appendingPathComponent("agent.sock") }
    public var writeLock: URL { runDirectory.appendingPathComponent("write.lock") }
    public var tlsDirectory: URL { root.appendingPathComponent("tls") }
    /// The vault CA's certificate: what clients trust.
    public var caCertificate: URL { tlsDirectory.appendingPathComponent("ca.crt") }
    public var serverCertificate: URL { tlsDirectory.appendingPathComponent("server.crt") }
    public var serverKey: URL { tlsDirectory.appendingPathComponent("server.key") }

    /// Throws `.notAVault` unless `root` holds a vault.
    public func requireVault() throws {
        guard FileManager.default.fileExists(atPath: keyringFile.path) else {
            throw VaultError.notAVault(path: root.path)
        }
    }
}
