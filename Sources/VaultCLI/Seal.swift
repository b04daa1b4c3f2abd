import ArgumentParser
import Foundation
import VaultCore
import VaultServices

struct Seal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal the vault, or move it between Shamir shares and an HSM.",
        subcommands: [Close.self, Migrate.self], defaultSubcommand: Close.self)

    struct Close: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "now", abstract: "Seal the vault: the key agent drops every key from memory and exits.")

        @OptionGroup var options: VaultOptions

        func run() throws {
            let layout = VaultLayout(root: options.url)
            try layout.requireVault()
            try KeyAgentClient(layout: layout).seal()
            print("Vault sealed.")
        }
    }

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move an unsealed vault to an HSM, or back to Shamir shares, without re-encrypting a payload.",
            discussion: """
                --to pkcs11 creates a key in the token (PIN from MVAULT_PKCS11_PIN or MVAULT_PKCS11_PIN_FILE) that \
                seals the root key; the vault's Shamir shares become its recovery shares. --to shamir drops the \
                HSM's copy: the same shares unseal it again. Only the keyring file changes; stop the server first.
                """)

        enum Target: String, ExpressibleByArgument { case pkcs11, shamir }

        @OptionGroup var options: VaultOptions
        @Option(help: "pkcs11 or shamir.") var to: Target
        @Option(help: "The PKCS#11 module (with --to pkcs11).") var module: String?
        @Option(help: "The token label (with --to pkcs11).") var token: String?

        func run() throws {
            let layout = VaultLayout(root: options.url)
            try layout.requireVault()
            let client = KeyAgentClient(layout: layout)
            let summary: String
            switch to {
            case .pkcs11:
                guard let module, let token else {
                    throw VaultError.invalidArgument("--to pkcs11 needs --module PATH and --token LABEL")
                }
                let pin = try TokenSealer.pin(environment: ProcessInfo.processInfo.environment)
                summary = try client.migrateSeal(module: module, token: token, pin: pin)
            case .shamir:
                summary = try client.migrateSeal(module: nil, token: nil, pin: nil)
            }
            print("The vault is now sealed by \(summary).")
        }
    }
}
