import ArgumentParser
import Foundation
import Keyring
import VaultCore
import VaultServices

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a vault in a new or empty directory.",
        discussion: """
            By default the unseal key is split into 5 Shamir shares, any 3 of which unseal the
            vault. The shares are printed once and never stored: hand each to a different person.
            With --passphrase the unseal key is derived from a passphrase with Argon2id (64 MiB).
            """)

    @Argument(help: "Directory for the new vault.")
    var directory: String

    @Option(help: "Number of unseal shares to create.")
    var shares: Int = 5

    @Option(help: "Number of shares needed to unseal.")
    var threshold: Int = 3

    @Flag(help: "Protect the vault with a passphrase instead of Shamir shares.")
    var passphrase = false

    @Option(help: "Read the passphrase from this file (first line) instead of prompting.")
    var passphraseFile: String?

    @Option(
        name: .customLong("name"),
        help:
            "A DNS name or IP address for the server certificate (repeatable; default: localhost, this host, 127.0.0.1, ::1)."
    )
    var names: [String] = []

    func run() throws {
        let method: KeyringFile.Method
        if passphrase || passphraseFile != nil {
            method = .passphrase(try readNewPassphrase())
        } else {
            method = .shamir(shares: shares, threshold: threshold)
        }
        let url = URL(fileURLWithPath: directory)
        let created = try LocalVault.create(
            at: url, method: method, serverNames: names.isEmpty ? TLSNames.defaults : names)
        print("Created vault at \(url.standardizedFileURL.path)")
        print("TLS: clients trust \(url.standardizedFileURL.path)/tls/ca.crt (the vault's own CA)")
        if created.shares.isEmpty {
            print("Unseal it with: mvault unseal --vault \(directory)   (you will be asked for the passphrase)")
            return
        }
        let t = created.shares.first!.threshold
        print("")
        print("Unseal shares (\(t) of \(created.shares.count) are needed). They are shown only now and stored nowhere:")
        for (i, share) in created.shares.enumerated() {
            print("  share \(i + 1): \(share.text)")
        }
        print("")
        print("Give each share to a different person. Unseal with `mvault unseal --vault \(directory)`,")
        print("run once per share.")
    }

    func readNewPassphrase() throws -> String {
        if let passphraseFile {
            guard let text = try? String(contentsOfFile: passphraseFile, encoding: .utf8) else {
                throw VaultError.inputMissing(path: passphraseFile)
            }
            return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        guard let first = Terminal.readSecret(prompt: "New passphrase: ") else {
            throw VaultError.invalidArgument("no passphrase given on standard input")
        }
        if Terminal.stdinIsTTY {
            guard Terminal.readSecret(prompt: "Repeat passphrase: ") == first else {
                throw VaultError.invalidArgument("the passphrases differ; nothing was created")
            }
        }
        return first
    }
}
