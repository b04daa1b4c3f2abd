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
public final class KeyAgent {
    let layout: VaultLayout
    var file: KeyringFile
    var progress: UnsealProgress?
    var keyring: Keyring?
    var rootKey: [UInt8]?
    var shouldExit = false

    public init(layout: VaultLayout) throws {
        self.layout = layout
        self.file = try KeyringFile.load(from: layout.keyringFile)
    }

    /// Serves until sealed, or until the socket file is removed or replaced.
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
            switch request.op {
            case .status: return statusResponse()
            case .unseal: return try unseal(request)
            case .resetUnseal:
                progress?.reset()
                return statusResponse()
            case .seal:
                keyring = nil
                rootKey = nil
                progress = nil
                shouldExit = true
                return statusResponse()
            default:
                guard let keyring, let rootKey else { return .failure("the vault is sealed", code: "sealed") }
                return try handleUnsealed(request, keyring: keyring, rootKey: rootKey)
            }
        } catch let error as KeyringError {
            switch error {
            case .retiredVersion(let v):
                var r = AgentResponse.failure(error.description, code: "retired")
                r.retiredVersion = v
                return r
            case .foreignKey: return .failure(error.description, code: "foreignKey")
            case .unknownVersion: return .failure(error.description, code: "headerFailure")
            default: return .failure(error.description, code: "keyring")
            }
        } catch let error as SealedFormatError {
            return .failure(error.description, code: "headerFailure")
        } catch {
            return .failure("\(error)", code: "keyring")
        }
    }

    func handleUnsealed(_ request: AgentRequest, keyring: Keyring, rootKey: [UInt8]) throws -> AgentResponse {
        var r = AgentResponse(ok: true)
        switch request.op {
        case .wrap:
            guard let key = request.dataKey.flatMap(Hex.decode), key.count == 32,
                let prefix = request.headerPrefix.flatMap(Hex.decode)
            else { return .failure("malformed wrap request", code: "protocol") }
            let stanza = try keyring.wrap(dataKey: key, headerPrefix: prefix)
            r.kekID = Hex.encode(stanza.kekID)
            r.kekVersion = stanza.kekVersion
            r.nonce = Hex.encode(stanza.nonce)
            r.wrappedKey = Hex.encode(stanza.wrappedKey)
        case .unwrap:
            guard let prefix = request.headerPrefix.flatMap(Hex.decode),
                let id = request.kekID.flatMap(Hex.decode), let version = request.kekVersion,
                let nonce = request.nonce.flatMap(Hex.decode), let wrapped = request.wrappedKey.flatMap(Hex.decode)
            else { return .failure("malformed unwrap request", code: "protocol") }
            let stanza = KeyStanza(kekID: id, kekVersion: version, nonce: nonce, wrappedKey: wrapped)
            let key =
                request.forRewrap == true
                ? try keyring.unwrapForRewrap(stanza, headerPrefix: prefix)
                : try keyring.unwrap(stanza, headerPrefix: prefix)
            r.dataKey = Hex.encode(key)
        case .blobAddress:
            guard let digest = request.sha256.flatMap(Hex.decode), digest.count == 32 else {
                return .failure("malformed address request", code: "protocol")
            }
            r.address = keyring.blobAddress(forSHA256: digest)
        case .rotate:
            var updated = keyring
            r.version = updated.rotate()
            try save(updated, rootKey: rootKey)
        case .retire:
            guard let version = request.version else { return .failure("malformed retire request", code: "protocol") }
            var updated = keyring
            try updated.retire(below: version)
            try save(updated, rootKey: rootKey)
            r.version = updated.minimumDecryptionVersion
        default:
            return .failure("unexpected operation", code: "protocol")
        }
        return r
    }

    func save(_ updated: Keyring, rootKey: [UInt8]) throws {
        let newFile = try file.replacing(keyring: updated, rootKey: rootKey)
        try newFile.write(to: layout.keyringFile)
        file = newFile
        keyring = updated
    }

    func unseal(_ request: AgentRequest) throws -> AgentResponse {
        if keyring != nil { return statusResponse() }
        let unsealKey: [UInt8]
        switch file.seal {
        case .passphrase:
            guard let passphrase = request.passphrase else {
                return .failure("this vault is unsealed with its passphrase, not with shares", code: "unseal")
            }
            unsealKey = try file.unsealKey(passphrase: passphrase)
        case .shamir(_, let threshold):
            guard let text = request.share else {
                return .failure("this vault is unsealed with Shamir shares, not a passphrase", code: "unseal")
            }
            let share = try UnsealShare(text: text)
            guard let vaultID = Hex.decode(file.vaultID) else { throw KeyringError.corruptKeyring("bad vault id") }
            var current = progress ?? UnsealProgress(vaultID: vaultID, threshold: threshold)
            let step = try current.add(share)
            switch step {
            case .needMore:
                progress = current
                return statusResponse()
            case .complete(let key):
                progress = nil
                unsealKey = key
            }
        }
        let opened = try file.open(unsealKey: unsealKey)
        keyring = opened.keyring
        rootKey = opened.rootKey
        return statusResponse()
    }

    func statusResponse() -> AgentResponse {
        var r = AgentResponse(ok: true)
        r.status = KeyAgent.status(file: file, keyring: keyring, sharesGiven: progress?.shares.count ?? 0)
        return r
    }

    static func status(file: KeyringFile, keyring: Keyring?, sharesGiven: Int) -> KeyStatus {
        var threshold = 0
        if case .shamir(_, let t) = file.seal { threshold = t }
        return KeyStatus(
            sealed: keyring == nil, sealType: file.seal.summary, sharesGiven: sharesGiven, threshold: threshold,
            versions: keyring?.versions.map {
                .init(
                    version: $0.version, createdAt: $0.createdAt,
                    retired: $0.version < keyring!.minimumDecryptionVersion)
            } ?? [],
            newestVersion: keyring?.newestVersion, minimumDecryptionVersion: keyring?.minimumDecryptionVersion)
    }
}
