import ArgumentParser
import Foundation
import Keyring
import VaultCore
import VaultServices

struct Unseal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Give the vault one unseal share (or its passphrase), or unseal it with its HSM.",
        discussion: """
            Run once per share; progress is kept by the vault's key agent between runs ("2 of 3"). \
            The share or passphrase is read from the terminal without echo, or from standard input. \
            An HSM-sealed vault unseals in one step with the token's PIN from MVAULT_PKCS11_PIN or the \
            file MVAULT_PKCS11_PIN_FILE; with --recovery it takes recovery shares instead. On the host of a \
            running server, this unseals the server. With --addr it unseals a server over HTTPS, the \
            share read the same way (never from the command line).
            """)

    @OptionGroup var options: VaultOptions

    @Flag(help: "Forget the shares given so far and start again.")
    var reset = false

    @Flag(help: "HSM-sealed vault: give a recovery share instead of using the HSM.")
    var recovery = false

    @Option(help: "Unseal the server at https://HOST:PORT instead of a vault on this host.")
    var addr: String?

    @Option(help: "With --addr: a PEM file with the CA to trust (the vault's tls/ca.crt).")
    var ca: String?

    struct RemoteStatus: Decodable {
        var sealed: Bool
        var type: String
        var threshold: Int
        var progress: Int
    }

    func run() async throws {
        if let addr { return try await unseal(addr) }
        guard ca == nil else { throw ValidationError("--ca goes with --addr") }
        let layout = VaultLayout(root: options.url)
        try layout.requireVault()
        let client = KeyAgentClient(layout: layout)
        if reset {
            let status = try client.resetUnseal()
            print("Unseal progress reset: \(status.sharesGiven) of \(status.threshold) shares given.")
            return
        }
        let file = try KeyringFile.load(from: layout.keyringFile)
        var current = try client.status()
        if !current.sealed {
            print("The vault is already unsealed.")
            return
        }
        let status: KeyStatus
        switch file.seal {
        case .passphrase:
            guard let secret = Terminal.readSecret(prompt: "Passphrase: "), !secret.isEmpty else {
                throw VaultError.invalidArgument("no passphrase given")
            }
            status = try client.unseal(passphrase: secret, agentExecutable: Self.executablePath)
        case .pkcs11 where !recovery:
            let environment = ProcessInfo.processInfo.environment
            status = try client.unseal(
                pin: try TokenSealer.pin(environment: environment), module: environment["MVAULT_PKCS11_MODULE"],
                agentExecutable: Self.executablePath)
        case .shamir, .pkcs11:
            let prompt = "Unseal share (\(current.sharesGiven + 1) of \(current.threshold)): "
            guard let secret = Terminal.readSecret(prompt: prompt), !secret.isEmpty else {
                throw VaultError.invalidArgument("no share given")
            }
            // Check the share's form locally first, so a typo never reaches the agent.
            _ = try UnsealShare(text: secret)
            status = try client.unseal(share: secret, agentExecutable: Self.executablePath)
        }
        current = status
        if current.sealed {
            print("Share accepted: \(current.sharesGiven) of \(current.threshold). The vault is still sealed.")
        } else {
            print("Vault unsealed (key version \(current.newestVersion ?? 0)).")
        }
    }

    /// One share (or the passphrase) to a server's `POST /v1/sys/unseal`.
    func unseal(_ addr: String) async throws {
        let client = try RemoteClient(addr: addr, token: nil, caPEM: try ca.map { try RemoteProfile.readCA($0) })
        try await client.using { client in
            let current = try RemoteClient.decoder.decode(
                RemoteStatus.self, from: try await client.call(.GET, "/v1/sys/seal-status"))
            guard current.sealed else {
                print("The server is already unsealed.")
                return
            }
            let passphrase = current.type.hasPrefix("passphrase")
            let prompt =
                passphrase ? "Passphrase: " : "Unseal share (\(current.progress + 1) of \(current.threshold)): "
            guard let secret = Terminal.readSecret(prompt: prompt), !secret.isEmpty else {
                throw VaultError.invalidArgument(passphrase ? "no passphrase given" : "no share given")
            }
            if !passphrase { _ = try UnsealShare(text: secret) }
            let status = try RemoteClient.decoder.decode(
                RemoteStatus.self,
                from: try await client.call(
                    .POST, "/v1/sys/unseal", json: [passphrase ? "passphrase" : "share": secret]))
            if status.sealed {
                print("Share accepted: \(status.progress) of \(status.threshold). The server is still sealed.")
            } else {
                print("Server unsealed.")
            }
        }
    }

    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
    }
}
