import Foundation
import Keyring
import SealedFormat
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// The process that holds an unsealed vault's keys in memory — the local counterpart of a
/// Vault server's barrier. It listens on `run/agent.sock` inside the vault (mode 0600, peer uid
/// checked), collects unseal shares across invocations, and wraps and unwraps data keys.
/// `seal` makes it exit, so every key it held leaves memory with the process.
///
/// - Important: KEKs and the root key never leave this process; only per-file data keys do.
///
/// The server runs one too, over its own keys (`init(layout:keys:)`): the CLI on the server's
/// host then works with the server's unsealed state, and `mvault seal` seals the server.
public final class KeyAgent: @unchecked Sendable {
    let layout: VaultLayout
    let keys: KeyHolder
    /// Whether `seal` ends `run()` (the agent process) or only drops the keys (in a server).
    let exitsOnSeal: Bool
    /// Called after an unseal through the socket opened the keyring (the server opens its audit log).
    let onUnseal: (@Sendable () -> Void)?
    // Read by `run()` between polls, set by `handle` (same thread) or `stop()`.
    nonisolated(unsafe) var shouldExit = false

    public init(layout: VaultLayout) throws {
        self.layout = layout
        self.keys = try KeyHolder(layout: layout)
        exitsOnSeal = true
        onUnseal = nil
    }

    /// An agent over `keys`, held by another process's code (the server's).
    public init(layout: VaultLayout, keys: KeyHolder, onUnseal: @escaping @Sendable () -> Void) {
        self.layout = layout
        self.keys = keys
        exitsOnSeal = false
        self.onUnseal = onUnseal
    }

    /// Ends `run()` within a second.
    public func stop() { shouldExit = true }

    /// Serves until sealed (or stopped), or until the socket file is removed or replaced.
    public func run() throws {
        let path = layout.agentSocket.path
        if let fd = try UnixSocket.connect(path: path) {
            close(fd)
            throw VaultError.keyService("a key agent is already running for this vault")
        }
        unlink(path)
        let listener = try UnixSocket.listen(path: path)
        defer {
            close(listener)
            unlink(path)
        }
        var own = stat()
        stat(path, &own)
        signal(SIGPIPE, SIG_IGN)
        while !shouldExit {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 1000)
            var now = stat()
            if stat(path, &now) != 0 || now.st_ino != own.st_ino { return }
            guard ready > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            serve(client)
            close(client)
        }
    }

    func serve(_ fd: Int32) {
        UnixSocket.setTimeout(fd, seconds: 5)
        guard let uid = UnixSocket.peerUID(fd), uid == getuid() || uid == 0 else { return }
        let response: AgentResponse
        do {
            let request = try JSONDecoder().decode(AgentRequest.self, from: UnixSocket.receive(fd))
            response = handle(request)
        } catch {
            response = .failure("malformed request to the key agent", code: "protocol")
        }
        if let data = try? JSONEncoder().encode(response) { try? UnixSocket.send(fd, data) }
    }

    func handle(_ request: AgentRequest) -> AgentResponse {
        do {
            var r = AgentResponse(ok: true)
            switch request.op {
            case .status:
                r.status = keys.status()
            case .unseal:
                let wasSealed = keys.status().sealed
                if let pin = request.pin {
                    r.status = try keys.unsealWithHSM(pin: pin, module: request.module)
                } else {
                    r.status = try keys.unseal(share: request.share, passphrase: request.passphrase)
                }
                if wasSealed, r.status?.sealed == false { onUnseal?() }
            case .resetUnseal:
                r.status = keys.resetUnseal()
            case .seal:
                keys.seal()
                if exitsOnSeal { shouldExit = true }
                r.status = keys.status()
            case .wrap:
                guard let key = request.dataKey.flatMap(Hex.decode), key.count == 32,
                    let prefix = request.headerPrefix.flatMap(Hex.decode)
                else { return .failure("malformed wrap request", code: "protocol") }
                let stanza = try keys.wrap(dataKey: key, headerPrefix: prefix)
                r.kekID = Hex.encode(stanza.kekID)
                r.kekVersion = stanza.kekVersion
                r.nonce = Hex.encode(stanza.nonce)
                r.wrappedKey = Hex.encode(stanza.wrappedKey)
            case .unwrap:
                guard let prefix = request.headerPrefix.flatMap(Hex.decode),
                    let id = request.kekID.flatMap(Hex.decode), let version = request.kekVersion,
                    let nonce = request.nonce.flatMap(Hex.decode),
                    let wrapped = request.wrappedKey.flatMap(Hex.decode)
                else { return .failure("malformed unwrap request", code: "protocol") }
                let stanza = KeyStanza(kekID: id, kekVersion: version, nonce: nonce, wrappedKey: wrapped)
                r.dataKey = Hex.encode(
                    try keys.unwrap(stanza, headerPrefix: prefix, forRewrap: request.forRewrap == true))
            case .blobAddress:
                guard let digest = request.sha256.flatMap(Hex.decode), digest.count == 32 else {
                    return .failure("malformed address request", code: "protocol")
                }
                r.address = try keys.blobAddress(forSHA256: digest)
            case .auditVerifier:
                r.secret = try AuditKeys.checkpointKey(seed: keys.derivedKey(purpose: AuditKeys.checkpointPurpose))
                    .verifier.encoded
            case .auditHash:
                guard let value = request.value else { return .failure("malformed hash request", code: "protocol") }
                r.secret = AuditKeys.hmac(value, key: try keys.derivedKey(purpose: AuditKeys.hmacPurpose))
            case .watermarkSecret:
                r.secret = Hex.encode(try keys.watermarkSecret())
            case .signBackupManifest:
                guard let text = request.value else { return .failure("malformed sign request", code: "protocol") }
                r.secret = try keys.signBackupManifest(text)
            case .migrateSeal:
                r.secret = try keys.migrateSeal(module: request.module, token: request.token, pin: request.pin)
            case .backupVerifier:
                r.secret = try keys.backupVerifier()
            case .rotate:
                r.version = try keys.rotate()
            case .retire:
                guard let version = request.version else {
                    return .failure("malformed retire request", code: "protocol")
                }
                r.version = try keys.retire(below: version)
            }
            return r
        } catch VaultError.sealed {
            return .failure("the vault is sealed", code: "sealed")
        } catch let error as KeyringError {
            switch error {
            case .retiredVersion(let v):
                var r = AgentResponse.failure(error.description, code: "retired")
                r.retiredVersion = v
                return r
            case .foreignKey: return .failure(error.description, code: "foreignKey")
            case .unknownVersion where request.op == .unwrap:
                return .failure(error.description, code: "headerFailure")
            default: return .failure(error.description, code: "keyring")
            }
        } catch let error as SealedFormatError {
            return .failure(error.description, code: "headerFailure")
        } catch {
            return .failure("\(error)", code: "keyring")
        }
    }
}
