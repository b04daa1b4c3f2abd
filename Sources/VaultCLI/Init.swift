import ArgumentParser
import Foundation
import Identity
import Keyring
import SealedFormat
import VaultCore
import VaultServices

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a vault in a new or empty directory.",
        discussion: """
            By default the unseal key is split into 5 Shamir shares, any 3 of which unseal the \
            vault. The shares are printed once and never stored: hand each to a different person. \
            With --passphrase the unseal key is derived from a passphrase with Argon2id (64 MiB). \
            With --seal pkcs11 --module PATH --token LABEL the root key is sealed by an AES key created \
            inside the HSM (non-extractable); the vault then unseals by itself wherever the token and its PIN \
            (MVAULT_PKCS11_PIN or the file MVAULT_PKCS11_PIN_FILE, never an argument) are, and the Shamir \
            shares printed are for recovery only.
            """)

    @Argument(help: "Directory for the new vault.")
    var directory: String

    @Option(help: "Number of unseal shares to create.")
    var shares: Int = 5

    @Option(help: "Number of shares needed to unseal.")
    var threshold: Int = 3

    @Flag(help: "Protect the vault with a passphrase instead of Shamir shares.")
    var passphrase = false

    enum Seal: String, ExpressibleByArgument { case shamir, passphrase, pkcs11 }

    @Option(help: "How the vault is sealed: shamir (default), passphrase, or pkcs11 (an HSM).")
    var seal: Seal?

    @Option(help: "The PKCS#11 module of the HSM (with --seal pkcs11), e.g. /usr/lib/softhsm/libsofthsm2.so.")
    var module: String?

    @Option(help: "The label of the HSM token (with --seal pkcs11).")
    var token: String?

    @Option(help: "Read the passphrase from this file (first line) instead of prompting.")
    var passphraseFile: String?

    @Option(help: "Create the first administrator with this user name (asks for a password).")
    var admin: String?

    @Option(help: "Read the administrator's password from this file (first line) instead of prompting.")
    var adminPasswordFile: String?

    @Option(
        name: .customLong("name"),
        help:
            "A DNS name or IP address for the server certificate (repeatable; default: localhost, this host, 127.0.0.1, ::1)."
    )
    var names: [String] = []

    func run() throws {
        let method: KeyringFile.Method
        var tokenKey: (TokenSealer, String)?
        switch seal ?? (passphrase || passphraseFile != nil ? .passphrase : .shamir) {
        case .passphrase: method = .passphrase(try readNewPassphrase())
        case .shamir: method = .shamir(shares: shares, threshold: threshold)
        case .pkcs11:
            guard let module, let token else {
                throw VaultError.invalidArgument("--seal pkcs11 needs --module PATH and --token LABEL")
            }
            let id = Hex.encode(SecureRandom.bytes(6))
            let (label, signingLabel) = ("mvault-root-" + id, "mvault-sign-" + id)
            let pin = try TokenSealer.pin(environment: ProcessInfo.processInfo.environment)
            let sealer = try TokenSealer.create(
                module: module, token: token, label: label, signingLabel: signingLabel, pin: pin)
            tokenKey = (sealer, signingLabel)
            method = .pkcs11(
                HSMSeal(
                    module: module, token: token, keyLabel: label, recoveryShares: shares,
                    recoveryThreshold: threshold, signingKeyLabel: signingLabel), sealer)
        }
        do {
            try create(method)
        } catch {
            // Nothing was created: the token keeps no key of a vault that does not exist.
            if let (sealer, signingLabel) = tokenKey { try? sealer.destroy(signingLabel: signingLabel) }
            throw error
        }
    }

    func create(_ method: KeyringFile.Method) throws {
        let url = URL(fileURLWithPath: directory)
        var adminRecord: UserRecord?
        if let admin {
            try UserName.validate(admin)
            let password = try readSecret(file: adminPasswordFile, prompt: "Password for \(admin): ", confirm: true)
            try PasswordPolicy.standard.check(password, username: admin)
            adminRecord = UserRecord(
                name: admin, passwordHash: try PasswordHashing.standard.hash(password), roles: ["admin"],
                createdAt: Date())
        }
        let created = try LocalVault.create(
            at: url, method: method, serverNames: names.isEmpty ? TLSNames.defaults : names, admin: adminRecord)
        print("Created vault at \(url.standardizedFileURL.path)")
        if let admin { print("Administrator: \(admin) (log in with POST /v1/auth/login)") }
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
        if case .pkcs11(let config, _) = method {
            print(
                "Root key sealed by the HSM: token \(config.token), key \(config.keyLabel); signing key \(config.signingKeyLabel ?? "none")."
            )
            print("The vault unseals with the token (`mvault unseal`, or by itself when the server starts);")
            print("the shares are for recovery only (`mvault unseal --recovery`).")
            return
        }
        print("Give each share to a different person. Unseal with `mvault unseal --vault \(directory)`,")
        print("run once per share.")
    }

    func readNewPassphrase() throws -> String {
        try readSecret(file: passphraseFile, prompt: "New passphrase: ", confirm: true)
    }

    /// The first line of `file`, or a line typed at the terminal (twice when `confirm`), or stdin.
    func readSecret(file: String?, prompt: String, confirm: Bool) throws -> String {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw VaultError.inputMissing(path: file)
            }
            return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        guard let first = Terminal.readSecret(prompt: prompt) else {
            throw VaultError.invalidArgument("nothing given on standard input for: \(prompt)")
        }
        if confirm && Terminal.stdinIsTTY {
            guard Terminal.readSecret(prompt: "Repeat: ") == first else {
                throw VaultError.invalidArgument("the two entries differ; nothing was created")
            }
        }
        return first
    }
}
