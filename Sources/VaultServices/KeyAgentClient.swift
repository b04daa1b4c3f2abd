import Foundation
import Keyring
import SealedFormat
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Talks to a vault's key agent; the `KeyWrapping` the CLI seals and opens files with.
public struct KeyAgentClient: KeyWrapping, Sendable {
    public let layout: VaultLayout

    public init(layout: VaultLayout) {
        self.layout = layout
    }

    /// Whether an agent is listening for this vault.
    public var isRunning: Bool {
        guard let fd = try? UnixSocket.connect(path: layout.agentSocket.path) else { return false }
        close(fd)
        return true
    }

    /// The key status; a vault without a running agent is sealed with no shares given.
    public func status() throws -> KeyStatus {
        guard isRunning else {
            let file = try KeyringFile.load(from: layout.keyringFile)
            return KeyHolder.status(file: file, keyring: nil, sharesGiven: 0)
        }
        return try call(AgentRequest(.status)).status!
    }

    /// Starts the agent (if needed) and gives it one share or the passphrase.
    public func unseal(
        share: String? = nil, passphrase: String? = nil, pin: String? = nil, module: String? = nil,
        agentExecutable: String
    ) throws -> KeyStatus {
        if !isRunning { try startAgent(executable: agentExecutable) }
        var request = AgentRequest(.unseal)
        request.share = share
        request.passphrase = passphrase
        request.pin = pin
        request.module = module
        return try call(request).status!
    }

    /// Forgets the shares given so far.
    public func resetUnseal() throws -> KeyStatus {
        guard isRunning else { return try status() }
        return try call(AgentRequest(.resetUnseal)).status!
    }

    /// Drops every key: the agent exits. Sealing a sealed vault is not an error.
    public func seal() throws {
        guard isRunning else { return }
        _ = try call(AgentRequest(.seal))
        for _ in 0..<100 where isRunning { usleep(20_000) }
    }

    public func rotate() throws -> UInt32 { try call(AgentRequest(.rotate)).version! }

    public func retire(below version: UInt32) throws -> UInt32 {
        var request = AgentRequest(.retire)
        request.version = version
        return try call(request).version!
    }

    /// The vault's checkpoint verifier key (`name+hash+key`), from the keyring itself.
    public func auditVerifier() throws -> String {
        guard let text = try call(AgentRequest(.auditVerifier)).secret else {
            throw VaultError.keyService("the key agent sent no verifier key")
        }
        return text
    }

    /// The audit log's HMAC of `value`.
    public func auditHash(_ value: String) throws -> String {
        var request = AgentRequest(.auditHash)
        request.value = value
        guard let text = try call(request).secret else { throw VaultError.keyService("the key agent sent no HMAC") }
        return text
    }

    public func signBackupManifest(_ text: String) throws -> String {
        var request = AgentRequest(.signBackupManifest)
        request.value = text
        guard let note = try call(request).secret else {
            throw VaultError.keyService("the key agent sent no signature")
        }
        return note
    }

    /// Moves the vault to the HSM (`module`, `token`, `pin`) or back to Shamir shares (nil).
    public func migrateSeal(module: String?, token: String?, pin: String?) throws -> String {
        var request = AgentRequest(.migrateSeal)
        request.module = module
        request.token = token
        request.pin = pin
        guard let summary = try call(request).secret else {
            throw VaultError.keyService("the key agent sent no answer")
        }
        return summary
    }

    public func backupVerifier() throws -> String {
        guard let text = try call(AgentRequest(.backupVerifier)).secret else {
            throw VaultError.keyService("the key agent sent no verifier key")
        }
        return text
    }

    public func watermarkSecret() throws -> [UInt8] {
        guard let secret = try call(AgentRequest(.watermarkSecret)).secret.flatMap(Hex.decode), secret.count == 32
        else {
            throw VaultError.keyService("the key agent sent a malformed watermark secret")
        }
        return secret
    }

    public func blobAddress(forSHA256 digest: [UInt8]) throws -> String {
        var request = AgentRequest(.blobAddress)
        request.sha256 = Hex.encode(digest)
        return try call(request).address!
    }

    public func wrap(dataKey: [UInt8], headerPrefix: [UInt8]) throws -> KeyStanza {
        var request = AgentRequest(.wrap)
        request.dataKey = Hex.encode(dataKey)
        request.headerPrefix = Hex.encode(headerPrefix)
        let r = try call(request)
        guard let id = r.kekID.flatMap(Hex.decode), let version = r.kekVersion,
            let nonce = r.nonce.flatMap(Hex.decode), let wrapped = r.wrappedKey.flatMap(Hex.decode)
        else { throw VaultError.keyService("the key agent sent a malformed wrap") }
        return KeyStanza(kekID: id, kekVersion: version, nonce: nonce, wrappedKey: wrapped)
    }

    public func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8]) throws -> [UInt8] {
        try unwrap(stanza, headerPrefix: headerPrefix, forRewrap: false)
    }

    public func unwrap(_ stanza: KeyStanza, headerPrefix: [UInt8], forRewrap: Bool) throws -> [UInt8] {
        var request = AgentRequest(.unwrap)
        request.headerPrefix = Hex.encode(headerPrefix)
        request.kekID = Hex.encode(stanza.kekID)
        request.kekVersion = stanza.kekVersion
        request.nonce = Hex.encode(stanza.nonce)
        request.wrappedKey = Hex.encode(stanza.wrappedKey)
        request.forRewrap = forRewrap
        guard let key = try call(request).dataKey.flatMap(Hex.decode), key.count == 32 else {
            throw VaultError.keyService("the key agent sent a malformed key")
        }
        return key
    }

    func call(_ request: AgentRequest) throws -> AgentResponse {
        guard let fd = try UnixSocket.connect(path: layout.agentSocket.path) else { throw VaultError.sealed }
        defer { close(fd) }
        try UnixSocket.send(fd, try JSONEncoder().encode(request))
        let response = try JSONDecoder().decode(AgentResponse.self, from: UnixSocket.receive(fd))
        guard response.ok else {
            let message = response.error ?? "key agent error"
            switch response.code {
            case "sealed": throw VaultError.sealed
            case "headerFailure": throw SealedFormatError.headerFailure
            case "retired": throw KeyringError.retiredVersion(response.retiredVersion ?? 0)
            case "foreignKey": throw KeyringError.foreignKey
            default: throw AgentError(message: message)
            }
        }
        return response
    }

    /// Spawns `executable agent --vault DIR` in its own session and waits for its socket.
    func startAgent(executable: String) throws {
        try FileManager.default.createDirectory(
            at: layout.agentSocket.deletingLastPathComponent(), withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["agent", "--vault", layout.root.path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let log = layout.agentSocket.deletingLastPathComponent().appendingPathComponent("agent.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        for _ in 0..<250 {
            if isRunning { return }
            if !process.isRunning {
                let detail = (try? String(contentsOf: log, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                throw VaultError.keyService("the key agent failed to start: \(detail ?? "no output")")
            }
            usleep(20_000)
        }
        throw VaultError.keyService("the key agent did not start within 5 seconds")
    }
}

/// An error the key agent reported, passed on with its own message.
public struct AgentError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
