import ArgumentParser
import Foundation
import Keyring
import VaultCore
import VaultServices

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage key-encryption key (KEK) versions.",
        subcommands: [Rotate.self, Rewrap.self, Retire.self, HSMPublic.self])

    struct HSMPublic: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hsm-public",
            abstract: "Export the public half of the HSM's signing key (an HSM-sealed vault).",
            discussion: """
                The key pair inside the token cosigns every audit checkpoint and backup manifest while the HSM \
                unsealed the vault. Prints the note verifier keys to check them with \
                (`mvault audit verify --key`, `mvault backup verify --key`) and the key in PEM, for any ECDSA \
                P-256 tool. Logs in to the token with MVAULT_PKCS11_PIN or MVAULT_PKCS11_PIN_FILE.
                """)
        @OptionGroup var options: VaultOptions
        @Option(help: "Write audit-hsm.pub, backup-hsm.pub and hsm-signing.pem into this directory.")
        var output: String?

        func run() throws {
            let layout = VaultLayout(root: options.url)
            try layout.requireVault()
            guard case .pkcs11(let config) = try KeyringFile.load(from: layout.keyringFile).seal,
                let label = config.signingKeyLabel
            else { throw VaultError.invalidArgument("this vault has no signing key in an HSM") }
            let environment = ProcessInfo.processInfo.environment
            let token = try TokenSealer.open(
                config, pin: try TokenSealer.pin(environment: environment), module: environment["MVAULT_PKCS11_MODULE"])
            let audit = try token.signer(label: label, name: AuditKeys.checkpointKeyName).verifier
            let backup = try token.signer(label: label, name: BackupKeys.keyName).verifier
            guard case .ecdsaP256(let key) = audit.key else { return }
            let files = [
                ("audit-hsm.pub", audit.encoded + "\n"), ("backup-hsm.pub", backup.encoded + "\n"),
                ("hsm-signing.pem", key.pemRepresentation + "\n"),
            ]
            if let output {
                let dir = URL(fileURLWithPath: output)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
            }
            print("token \(config.token), key \(label)")
            for (name, text) in files { print("\(name):\n\(text)") }
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a KEK version; new files are wrapped under it.")
        @OptionGroup var options: VaultOptions

        func run() throws {
            let vault = try openVault(options)
            try vault.keys.requireUnsealed()
            let version = try KeyAgentClient(layout: vault.layout).rotate()
            print("Key version \(version) is now active for new files.")
            print("hint: run `mvault key rewrap` to move existing files to it")
        }
    }

    struct Rewrap: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrap every data key under the newest KEK version (payloads are not decrypted).")
        @OptionGroup var options: VaultOptions

        func run() throws {
            let vault = try openVault(options)
            let count = try vault.rewrap { print("rewrapped \($0)") }
            print("\(count) file(s) rewrapped to key version \(try vault.keys.newestVersion())")
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire every KEK version below VERSION: files under them can no longer be read.",
            discussion: """
                Refused while any stored file (of any version of any model) is still wrapped under a version \
                below VERSION: run `mvault key rewrap` first. Retired keys are kept so a rewrap can still move \
                files off them.
                """)
        @OptionGroup var options: VaultOptions

        @Option(help: "The lowest version still allowed to decrypt.")
        var below: UInt32

        func run() throws {
            let vault = try openVault(options)
            try vault.keys.requireUnsealed()
            // Refused while it would strand a file: every version of every model is looked at.
            let stranded = try vault.wrappedFiles().filter { $0.kekVersion < below }
            if !stranded.isEmpty {
                for file in stranded {
                    print("  \(ModelFilePath.displayed(file.name))  (key version \(file.kekVersion))")
                }
                throw VaultError.conflict(
                    "\(stranded.count) file(s) are still wrapped under key versions below \(below); retiring them would make these files unreadable",
                    hint: "run `mvault key rewrap` first, then retire")
            }
            let floor = try KeyAgentClient(layout: vault.layout).retire(below: below)
            print("Key versions below \(floor) are retired.")
            // Checked again: a file pushed meanwhile is under the newest version, so this is empty
            // unless the keyring already had retired versions in use.
            let left = try vault.filesUnderRetiredKeys()
            if left.isEmpty {
                print("No stored file uses a retired version.")
            } else {
                print("\(left.count) file(s) are still wrapped under retired versions and cannot be read:")
                for file in left { print("  \(ModelFilePath.displayed(file.name))  (key version \(file.kekVersion))") }
                print("hint: run `mvault key rewrap` to move them to the newest version")
            }
        }
    }
}
