import ArgumentParser
import CAllocator
import Foundation
import Logging
import VaultCore
import VaultServer
import VaultServices

struct Server: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the vault over HTTPS.",
        discussion: """
            Reads a JSON config file (see config/server.sample.json); MVAULT_VAULT, MVAULT_LISTEN \
            (host:port), MVAULT_TLS_CERT, MVAULT_TLS_KEY and MVAULT_CLIENT_CERTIFICATES override \
            it. Without --config, MVAULT_VAULT names the vault and the defaults apply \
            (127.0.0.1:8443, the vault's own certificate). MVAULT_LOG_LEVEL (trace, debug, info, \
            notice, warning, error) sets what is logged to standard error; passwords, tokens and \
            TOTP codes are never logged. The server starts sealed; its keys leave memory when it \
            exits.
            """)

    @Option(help: "The server's JSON config file.")
    var config: String?

    func run() async throws {
        // Every download moves 1 MiB buffers through several threads. By default glibc raises its
        // mmap threshold after the first such buffer is freed and then keeps them in per-thread
        // arenas, so resident memory grew with the number of concurrent downloads.
        mvault_bound_allocator()
        let configuration = try ServerConfiguration.load(path: config, environment: ProcessInfo.processInfo.environment)
        guard
            FileManager.default.fileExists(
                atPath: VaultLayout(root: URL(fileURLWithPath: configuration.vault)).keyringFile.path)
        else {
            // The server has no --vault: say how it is told where the vault is.
            throw VaultError.invalidArgument(
                "\(configuration.vault) is not a ModelVault vault: create one with `mvault init DIR`, then name it in the config file's \"vault\" or in MVAULT_VAULT"
            )
        }
        let ca = URL(fileURLWithPath: configuration.vault).appendingPathComponent("tls/ca.crt").path
        var logger = ServerLogHandler.logger(label: "mvault.server")
        if let level = ProcessInfo.processInfo.environment["MVAULT_LOG_LEVEL"] {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw VaultError.invalidArgument(
                    "MVAULT_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
            }
            logger.logLevel = parsed
        }
        let app = try buildApplication(configuration: configuration, logger: logger) { port in
            let base = "https://\(configuration.listen.host):\(port)"
            let lines = [
                "mvault server listening on \(base)  (vault \(configuration.vault))",
                "trust the vault CA: \(ca)",
                "unseal: curl --cacert \(ca) -X POST \(base)/v1/sys/unseal -d '{\"share\": \"mvs1-…\"}'",
            ]
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }
        try await app.runService()
    }
}
