import Backup
import Foundation
import VaultCore

/// What `mvault server` reads from its config file (JSON), then from the environment.
///
/// ```json
/// { "vault": "/srv/vault",
///   "listen": { "host": "127.0.0.1", "port": 8443 },
///   "tls": { "certificate": "tls/server.crt", "key": "tls/server.key",
///            "clientCertificates": "off", "clientCA": "tls/ca.crt" },
///   "limits": { "maxJSONBodyBytes": 65536, "idleTimeoutSeconds": 30, "sessionTTLSeconds": 3600,
///               "requestsPerSecondPerIP": 50, "requestBurstPerIP": 200,
///               "maxTokenTTLSeconds": 31536000, "uploadIdleSeconds": 3600,
///               "maxUploadFilesPerUser": 10000, "maxUploadBytesPerUser": 1099511627776,
///               "maxOpenUploadsPerUser": 100, "loginLockoutSeconds": 1 },
///   "audit": { "directory": "audit", "checkpointEvery": 1000, "checkpointSeconds": 60,
///              "sinks": [ { "type": "syslog", "address": "siem.example:6514", "tls": true, "ca": "siem-ca.pem",
///                           "format": "json" },
///                         { "type": "file", "path": "/var/log/mvault/audit.cef", "format": "cef" } ] } }
/// ```
/// Environment overrides: `MVAULT_VAULT`, `MVAULT_LISTEN` (`host:port`), `MVAULT_TLS_CERT`,
/// `MVAULT_TLS_KEY`, `MVAULT_CLIENT_CERTIFICATES`. Relative TLS paths are relative to the vault directory.
public struct ServerConfiguration: Codable, Sendable, Equatable {
    public struct Listen: Codable, Sendable, Equatable {
        public var host: String = "127.0.0.1"
        public var port: Int = 8443
        public init(host: String = "127.0.0.1", port: Int = 8443) {
            self.host = host
            self.port = port
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            host = try c.decodeIfPresent(String.self, forKey: .host) ?? "127.0.0.1"
            port = try c.decodeIfPresent(Int.self, forKey: .port) ?? 8443
        }
    }

    public struct TLS: Codable, Sendable, Equatable {
        /// Whether clients present certificates (mutual TLS).
        public enum ClientCertificates: String, Codable, Sendable {
            /// Not asked for.
            case off
            /// Asked for; a client without one authenticates with a token instead.
            case optional
            /// Every connection must present a valid, unrevoked one.
            case required
        }

        public var certificate: String = "tls/server.crt"
        public var key: String = "tls/server.key"
        public var clientCertificates: ClientCertificates = .off
        /// The CA client certificates must chain to (default: the vault's own CA).
        public var clientCA: String = "tls/ca.crt"
        public init(
            certificate: String = "tls/server.crt", key: String = "tls/server.key",
            clientCertificates: ClientCertificates = .off, clientCA: String = "tls/ca.crt"
        ) {
            self.certificate = certificate
            self.key = key
            self.clientCertificates = clientCertificates
            self.clientCA = clientCA
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            certificate = try c.decodeIfPresent(String.self, forKey: .certificate) ?? "tls/server.crt"
            key = try c.decodeIfPresent(String.self, forKey: .key) ?? "tls/server.key"
            clientCertificates = try c.decodeIfPresent(ClientCertificates.self, forKey: .clientCertificates) ?? .off
            clientCA = try c.decodeIfPresent(String.self, forKey: .clientCA) ?? "tls/ca.crt"
        }
    }

    public struct Limits: Codable, Sendable, Equatable {
        /// Largest JSON request body accepted.
        public var maxJSONBodyBytes: Int = 64 << 10
        /// Connections idle this long are closed (slow clients cannot hold them).
        public var idleTimeoutSeconds: Int = 30
        /// How long a login session lasts.
        public var sessionTTLSeconds: Int = 3600
        /// Sustained requests per second allowed from one address.
        public var requestsPerSecondPerIP: Double = 50
        /// Requests one address may make at once before the rate applies.
        public var requestBurstPerIP: Int = 200
        /// The longest lifetime an API token may be given.
        public var maxTokenTTLSeconds: Int = 365 * 86_400
        /// An upload with no activity for this long is discarded.
        public var uploadIdleSeconds: Int = 3600
        /// What one user may hold in unfinished uploads: files, bytes, and uploads open at once.
        public var maxUploadFilesPerUser: Int = 10_000
        public var maxUploadBytesPerUser: UInt64 = 1 << 40
        public var maxOpenUploadsPerUser: Int = 100
        /// The first login lockout, after an account's 5 (or an address's 20) free failures; each
        /// further failure doubles it, up to 15 minutes.
        public var loginLockoutSeconds: Double = 1
        public init(
            maxJSONBodyBytes: Int = 64 << 10, idleTimeoutSeconds: Int = 30, sessionTTLSeconds: Int = 3600,
            requestsPerSecondPerIP: Double = 50, requestBurstPerIP: Int = 200, maxTokenTTLSeconds: Int = 365 * 86_400,
            uploadIdleSeconds: Int = 3600, maxUploadFilesPerUser: Int = 10_000, maxUploadBytesPerUser: UInt64 = 1 << 40,
            maxOpenUploadsPerUser: Int = 100, loginLockoutSeconds: Double = 1
        ) {
            self.maxUploadFilesPerUser = maxUploadFilesPerUser
            self.maxUploadBytesPerUser = maxUploadBytesPerUser
            self.maxOpenUploadsPerUser = maxOpenUploadsPerUser
            self.loginLockoutSeconds = loginLockoutSeconds
            self.maxTokenTTLSeconds = maxTokenTTLSeconds
            self.uploadIdleSeconds = uploadIdleSeconds
            self.maxJSONBodyBytes = maxJSONBodyBytes
            self.idleTimeoutSeconds = idleTimeoutSeconds
            self.sessionTTLSeconds = sessionTTLSeconds
            self.requestsPerSecondPerIP = requestsPerSecondPerIP
            self.requestBurstPerIP = requestBurstPerIP
        }
        /// Refuses limits that would stop the server working (a zero rate, a zero-byte body…).
        func check() throws {
            let positive: [(String, Double)] = [
                ("maxJSONBodyBytes", Double(maxJSONBodyBytes)), ("idleTimeoutSeconds", Double(idleTimeoutSeconds)),
                ("sessionTTLSeconds", Double(sessionTTLSeconds)), ("requestsPerSecondPerIP", requestsPerSecondPerIP),
                ("requestBurstPerIP", Double(requestBurstPerIP)), ("maxTokenTTLSeconds", Double(maxTokenTTLSeconds)),
                ("uploadIdleSeconds", Double(uploadIdleSeconds)),
                ("maxUploadFilesPerUser", Double(maxUploadFilesPerUser)),
                ("maxUploadBytesPerUser", Double(maxUploadBytesPerUser)),
                ("maxOpenUploadsPerUser", Double(maxOpenUploadsPerUser)),
            ]
            for (name, value) in positive where !(value > 0) || !value.isFinite {
                throw VaultError.invalidArgument("limits.\(name) must be a positive number")
            }
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            maxJSONBodyBytes = try c.decodeIfPresent(Int.self, forKey: .maxJSONBodyBytes) ?? 64 << 10
            idleTimeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .idleTimeoutSeconds) ?? 30
            sessionTTLSeconds = try c.decodeIfPresent(Int.self, forKey: .sessionTTLSeconds) ?? 3600
            requestsPerSecondPerIP = try c.decodeIfPresent(Double.self, forKey: .requestsPerSecondPerIP) ?? 50
            requestBurstPerIP = try c.decodeIfPresent(Int.self, forKey: .requestBurstPerIP) ?? 200
            maxTokenTTLSeconds = try c.decodeIfPresent(Int.self, forKey: .maxTokenTTLSeconds) ?? 365 * 86_400
            uploadIdleSeconds = try c.decodeIfPresent(Int.self, forKey: .uploadIdleSeconds) ?? 3600
            maxUploadFilesPerUser = try c.decodeIfPresent(Int.self, forKey: .maxUploadFilesPerUser) ?? 10_000
            maxUploadBytesPerUser = try c.decodeIfPresent(UInt64.self, forKey: .maxUploadBytesPerUser) ?? 1 << 40
            maxOpenUploadsPerUser = try c.decodeIfPresent(Int.self, forKey: .maxOpenUploadsPerUser) ?? 100
            loginLockoutSeconds = try c.decodeIfPresent(Double.self, forKey: .loginLockoutSeconds) ?? 1
        }
    }

    public struct Audit: Codable, Sendable, Equatable {
        /// Where the log lives (relative: to the vault directory).
        public var directory: String = "audit"
        /// A signed checkpoint after this many entries…
        public var checkpointEvery: Int = 1000
        /// …and at least this often while entries come in.
        public var checkpointSeconds: Double = 60
        /// Where else events go: syslog receivers and files, in SIEM formats.
        public var sinks: [AuditSinkConfiguration] = []
        /// Decoy models (patterns like `acme/decoy-*`): any request about one raises a critical alert.
        public var canaryModels: [String] = []
        /// Bulk exfiltration, tokens used from new networks, access outside hours.
        public var alerts = AlertConfiguration()
        public init(
            directory: String = "audit", checkpointEvery: Int = 1000, checkpointSeconds: Double = 60,
            sinks: [AuditSinkConfiguration] = [], canaryModels: [String] = [], alerts: AlertConfiguration = .init()
        ) {
            self.canaryModels = canaryModels
            self.alerts = alerts
            self.directory = directory
            self.checkpointEvery = checkpointEvery
            self.checkpointSeconds = checkpointSeconds
            self.sinks = sinks
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            directory = try c.decodeIfPresent(String.self, forKey: .directory) ?? "audit"
            checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? 1000
            checkpointSeconds = try c.decodeIfPresent(Double.self, forKey: .checkpointSeconds) ?? 60
            sinks = try c.decodeIfPresent([AuditSinkConfiguration].self, forKey: .sinks) ?? []
            canaryModels = try c.decodeIfPresent([String].self, forKey: .canaryModels) ?? []
            alerts = try c.decodeIfPresent(AlertConfiguration.self, forKey: .alerts) ?? AlertConfiguration()
        }
    }

    public var vault: String
    public var listen = Listen()
    public var tls = TLS()
    public var limits = Limits()
    public var audit = Audit()
    /// Scheduled backups (none unless set).
    public var backup: BackupSchedule?

    public init(vault: String) {
        self.vault = vault
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vault = try c.decode(String.self, forKey: .vault)
        listen = try c.decodeIfPresent(Listen.self, forKey: .listen) ?? Listen()
        tls = try c.decodeIfPresent(TLS.self, forKey: .tls) ?? TLS()
        limits = try c.decodeIfPresent(Limits.self, forKey: .limits) ?? Limits()
        audit = try c.decodeIfPresent(Audit.self, forKey: .audit) ?? Audit()
        backup = try c.decodeIfPresent(BackupSchedule.self, forKey: .backup)
    }

    /// Reads `path` (if given), then applies environment overrides.
    /// - Throws: `VaultError.invalidArgument` naming the file and what is wrong with it.
    public static func load(path: String?, environment: [String: String]) throws -> ServerConfiguration {
        var config: ServerConfiguration
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw VaultError.inputMissing(path: path)
            }
            if let (key, nearest) = try ConfigurationKeys.firstUnknown(in: data) {
                throw VaultError.invalidArgument(
                    "\(path): unknown setting '\(key)'" + (nearest.map { "; did you mean '\($0)'?" } ?? "")
                        + " (docs/configuration.md lists every setting)")
            }
            do {
                config = try JSONDecoder().decode(ServerConfiguration.self, from: data)
            } catch DecodingError.keyNotFound(let key, let context) {
                let field = (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
                throw VaultError.invalidArgument("\(path): missing setting '\(field)'")
            } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
                let field = context.codingPath.map(\.stringValue).joined(separator: ".")
                throw VaultError.invalidArgument("\(path): setting '\(field)' has an invalid value")
            } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
                let field = context.codingPath.map(\.stringValue).joined(separator: ".")
                throw VaultError.invalidArgument("\(path): setting '\(field)' has the wrong type")
            } catch {
                throw VaultError.invalidArgument("\(path) is not valid JSON")
            }
        } else {
            guard let vault = environment["MVAULT_VAULT"] else {
                throw VaultError.invalidArgument("no vault: pass --config FILE or set MVAULT_VAULT")
            }
            config = ServerConfiguration(vault: vault)
        }
        if let vault = environment["MVAULT_VAULT"] { config.vault = vault }
        if let listen = environment["MVAULT_LISTEN"] {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
                throw VaultError.invalidArgument("MVAULT_LISTEN must be host:port, e.g. 127.0.0.1:8443")
            }
            config.listen = Listen(host: String(listen[..<colon]), port: port)
        }
        if let cert = environment["MVAULT_TLS_CERT"] { config.tls.certificate = cert }
        if let key = environment["MVAULT_TLS_KEY"] { config.tls.key = key }
        if let mode = environment["MVAULT_CLIENT_CERTIFICATES"] {
            guard let parsed = TLS.ClientCertificates(rawValue: mode) else {
                throw VaultError.invalidArgument("MVAULT_CLIENT_CERTIFICATES must be off, optional or required")
            }
            config.tls.clientCertificates = parsed
        }
        guard (0...65535).contains(config.listen.port) else {
            throw VaultError.invalidArgument("listen.port must be between 0 and 65535")
        }
        try config.limits.check()
        guard config.limits.loginLockoutSeconds > 0, config.limits.loginLockoutSeconds <= 900 else {
            throw VaultError.invalidArgument("limits.loginLockoutSeconds must be above 0 and at most 900 (15 minutes)")
        }
        guard config.audit.checkpointEvery >= 1, config.audit.checkpointSeconds > 0 else {
            throw VaultError.invalidArgument(
                "audit.checkpointEvery must be at least 1 and audit.checkpointSeconds above 0")
        }
        for pattern in config.audit.canaryModels {
            do { _ = try ModelPattern(pattern) } catch {
                throw VaultError.invalidArgument("audit.canaryModels: \(error)")
            }
        }
        if let problem = config.audit.alerts.problem() { throw VaultError.invalidArgument("audit.alerts.\(problem)") }
        if let backup = config.backup, backup.to.isEmpty || backup.everySeconds < 1 {
            throw VaultError.invalidArgument("backup.to must name a directory and backup.everySeconds be at least 1")
        }
        for (i, sink) in config.audit.sinks.enumerated() {
            if let problem = sink.problem() { throw VaultError.invalidArgument("audit.sinks[\(i)]: \(problem)") }
        }
        return config
    }

    /// A TLS path resolved against the vault directory.
    func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: vault).appendingPathComponent(path).path
    }
}

extension ServerConfiguration {
    /// `backup` in the server config: a snapshot every `everySeconds` while unsealed, then the
    /// retention policy applied (docs/backup.md).
    public struct BackupSchedule: Codable, Sendable, Equatable {
        /// The destination directory (relative: to the vault directory).
        public var to: String
        public var everySeconds: Int = 3600
        public var keep = Backups.Retention()

        public init(to: String, everySeconds: Int = 3600, keep: Backups.Retention = .init()) {
            self.to = to
            self.everySeconds = everySeconds
            self.keep = keep
        }

        enum CodingKeys: String, CodingKey { case to, everySeconds, keep }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            to = try c.decode(String.self, forKey: .to)
            everySeconds = try c.decodeIfPresent(Int.self, forKey: .everySeconds) ?? 3600
            keep = try c.decodeIfPresent(Backups.Retention.self, forKey: .keep) ?? .init()
        }
    }
}
