import ArgumentParser
import Foundation
import Keyring
import VaultCore
import VaultServices

struct Unseal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Give the vault one unseal share (or its passphrase), or unseal it with its HSM.",
        discussion: """
            Run once per share; progress is kept by the vault's key agent between runs ("2 of 3"). \
            The share or passphrase is read from the terminal without echo, or from standard input. \
            An HSM-sealed vault unseals in one step with the token's PIN from MVAULT_PKCS11_PIN or the \
            file MVAULT_PKCS11_PIN_FILE; with --recovery it takes recovery shares instead.
            """)

    @OptionGroup var options: VaultOptions

    @Flag(help: "Forget the shares given so far and start again.")
    var reset = false

    @Flag(help: "HSM-sealed vault: give a recovery share instead of using the HSM.")
    var recovery = false

    func run() throws {
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

    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
    }
}
