import Backup
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Storage
import VaultCore
import VaultServices

/// Builds the vault's HTTPS application. `mvault server` calls this and nothing else; tests call
/// it with port 0 and learn the port from `onServerRunning`.
///
/// The server starts sealed and holds the keys in-process once unsealed; they leave memory when
/// the process exits.
public func buildApplication(
    configuration: ServerConfiguration, logger: Logger = ServerLogHandler.logger(label: "mvault.server"),
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let layout = VaultLayout(root: URL(fileURLWithPath: configuration.vault))
    try layout.requireVault()
    let host = configuration.listen.host
    // Held as long as the application (its onServerRunning keeps it), released when the process ends.
    let lock = try ServerLock(layout: layout, address: "\(host):\(configuration.listen.port)")
    let keys = try KeyHolder(layout: layout)
    let (api, metadata) = try makeAPI(configuration: configuration, layout: layout, keys: keys)
    let frontDoor = FrontDoor(
        routes: api.routes(),
        limiter: RateLimiter(
            perSecond: configuration.limits.requestsPerSecondPerIP, burst: configuration.limits.requestBurstPerIP),
        certificates: configuration.tls.clientCertificates != .off ? api : nil)
    let tls = try serverTLSConfiguration(configuration)
    let http1 = HTTP1Channel.Configuration(idleTimeout: .seconds(Int64(configuration.limits.idleTimeoutSeconds)))
    let services: [any Service] =
        [HSMUnsealer(api: api, logger: logger), HostAgent(layout: layout, api: api, logger: logger)]
        + (configuration.backup.map { schedule in
            [
                BackupScheduler(
                    schedule: schedule,
                    destination: schedule.to.hasPrefix("s3://")
                        ? schedule.to
                        : URL(fileURLWithPath: configuration.resolve(schedule.to)).standardizedFileURL.path,
                    source: BackupSource(
                        layout: layout, metadata: metadata,
                        auditDirectory: URL(fileURLWithPath: configuration.resolve(configuration.audit.directory)),
                        keys: keys),
                    keys: keys, audit: api.audit, metrics: api.metrics, logger: logger)
            ]
        } ?? [])
    return Application(
        responder: frontDoor,
        server: try .tls(.http1(configuration: http1), tlsConfiguration: tls),
        configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port)),
        services: services,
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? 0
            lock.record("\(host):\(port)")
            await onServerRunning(port)
        },
        logger: logger)
}

/// Every route the application built from `configuration` answers — the same list it registers.
public func apiRoutes(configuration: ServerConfiguration) throws -> [APIRoute] {
    let layout = VaultLayout(root: URL(fileURLWithPath: configuration.vault))
    return try makeAPI(configuration: configuration, layout: layout, keys: KeyHolder(layout: layout)).api.endpoints.map(
        \.0)
}

func makeAPI(configuration: ServerConfiguration, layout: VaultLayout, keys: KeyHolder) throws
    -> (api: VaultAPI, metadata: SQLiteMetadataStore)
{
    let metadata = try SQLiteMetadataStore(path: layout.metadataFile.path)
    let store = CachedStore(metadata)
    let vault = try LocalVault(
        layout: layout, metadata: store, blobs: try DirectoryBlobStore(root: layout.root), keys: keys)
    let sinks = configuration.audit.sinks.map { sink in
        var sink = sink
        sink.path = sink.path.map(configuration.resolve)
        sink.ca = sink.ca.map(configuration.resolve)
        return AuditSink(sink)
    }
    let metrics = VaultMetrics()
    let audit = AuditTrail(
        directory: URL(fileURLWithPath: configuration.resolve(configuration.audit.directory)),
        checkpointEvery: configuration.audit.checkpointEvery, checkpointSeconds: configuration.audit.checkpointSeconds,
        sinks: sinks, canaries: try configuration.audit.canaryModels.map { try ModelPattern($0) }, metrics: metrics)
    // The pulls of the last baseline windows, so a restart neither forgets a window under way
    // nor anyone's usual pace.
    let detector = try TheftDetector(configuration.audit.alerts)
    let bulk = configuration.audit.alerts.bulk
    let since = Date().addingTimeInterval(-Double((bulk.baselineWindows + 1) * bulk.windowSeconds))
    for d in try store.downloads(of: nil) where d.at >= since {
        _ = detector.download(
            actor: TheftDetector.actor(user: d.user, tokenID: d.tokenID), model: d.model, version: d.version,
            bytes: d.rangeEnd - d.rangeStart, at: d.at)
    }
    let api = VaultAPI(
        layout: layout, keys: keys, identities: store, vault: vault, limits: configuration.limits, audit: audit,
        metrics: metrics, detector: detector,
        throttle: LoginThrottle(firstLockout: configuration.limits.loginLockoutSeconds))
    return (api, metadata)
}

/// TLS 1.2 and 1.3 only; for 1.2, ECDHE key exchange with AEAD ciphers only (1.3 has no others).
func serverTLSConfiguration(_ configuration: ServerConfiguration) throws -> TLSConfiguration {
    let certPath = configuration.resolve(configuration.tls.certificate)
    let keyPath = configuration.resolve(configuration.tls.key)
    let chain: [NIOSSLCertificate]
    let key: NIOSSLPrivateKey
    do {
        chain = try NIOSSLCertificate.fromPEMFile(certPath)
    } catch {
        throw VaultError.invalidArgument("cannot read the TLS certificate \(certPath): \(error)")
    }
    do {
        key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
    } catch {
        throw VaultError.invalidArgument("cannot read the TLS private key \(keyPath): \(error)")
    }
    var tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    if configuration.tls.clientCertificates != .off {
        let caPath = configuration.resolve(configuration.tls.clientCA)
        do {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
        } catch {
            throw VaultError.invalidArgument("cannot read the client CA certificate \(caPath): \(error)")
        }
        tls.certificateVerification =
            configuration.tls.clientCertificates == .required ? .noHostnameVerification : .optionalVerification
    }
    tls.minimumTLSVersion = .tlsv12
    tls.maximumTLSVersion = .tlsv13
    tls.cipherSuites = [
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-GCM-SHA256",
    ].joined(separator: ":")
    return tls
}

/// Unseals an HSM-sealed vault when the server starts (see `VaultAPI.unsealWithHSM`), then
/// stays until shutdown.
/// The key agent protocol on the vault's `run/agent.sock`, over the server's own keys, so the
/// CLI on this host (as the server's user) works with the server's unsealed state: `mvault
/// trace` and `backup create` need no second unseal, `mvault seal` seals the server, and
/// `mvault unseal` there unseals it. When a key agent process already holds the socket, the
/// server leaves it alone and says so.
struct HostAgent: Service {
    let layout: VaultLayout
    let api: VaultAPI
    let logger: Logger

    func run() async throws {
        let api = self.api
        let agent = KeyAgent(layout: layout, keys: api.keys) {
            Task { try? await api.didUnseal() }
        }
        let logger = self.logger
        let thread = Thread {
            do { try agent.run() } catch {
                logger.warning("the CLI on this host cannot reach the server's keys: \(error)")
            }
        }
        thread.name = "mvault.host-agent"
        thread.start()
        try? await gracefulShutdown()
        agent.stop()
    }
}

struct HSMUnsealer: Service {
    let api: VaultAPI
    let logger: Logger

    func run() async throws {
        await api.unsealWithHSM(environment: ProcessInfo.processInfo.environment, logger: logger)
        try? await gracefulShutdown()
    }
}
