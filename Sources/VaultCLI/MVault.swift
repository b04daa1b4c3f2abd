import ArgumentParser
import AuditLog
import Foundation
import HSM
import Identity
import Keyring
import ModelFormats
import SealedFormat
import VaultCore
import VaultServices

#if canImport(Glibc)
    import Glibc
#endif

/// The `mvault` command tree.
public struct MVault: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mvault",
        abstract: "ModelVault keeps machine-learning models encrypted, access-controlled and traceable.",
        discussion: """
            A vault is a directory holding sealed (encrypted) model files, their metadata and a \
            keyring. Create one with `mvault init DIR`, unseal it with `mvault unseal`, then push \
            and pull models. Commands find the vault through --vault DIR or $MVAULT_VAULT.

            To work with a server instead, log in with `mvault login --addr https://HOST:PORT`: \
            push, pull, ls, show and rm then go to the server unless --vault names a vault \
            directory (a login wins over $MVAULT_VAULT, and the command says so). Machines can set \
            MVAULT_ADDR and MVAULT_TOKEN (an API token) instead. Records print as JSON with --json.
            """,
        version: "0.1.0",
        subcommands: [
            Init.self, Unseal.self, Seal.self, Status.self, Push.self, Pull.self, List.self, Show.self,
            Remove.self, Verify.self, Key.self, Server.self, Login.self, Logout.self, User.self, Role.self,
            Grant.self, Token.self, Cert.self, Access.self, WatermarkCommand.self, TraceCommand.self, Audit.self,
            BackupCommand.self, Agent.self, Completions.self,
        ]
    )

    public init() {}

    /// Runs the command line, printing errors as `error: …` / `hint: …` and exiting non-zero.
    public static func runMain() async {
        // Everything a vault writes (database, blobs, keyring, pulled models) is private.
        umask(0o077)
        // A mistyped command gets the nearest one, as git does.
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, !first.hasPrefix("-") {
            let names = configuration.subcommands.map { $0._commandName } + ["help"]
            if !names.contains(first) {
                fail(
                    "unknown command '\(first)'"
                        + (Suggestion.nearest(first, in: names).map { "; did you mean '\($0)'?" } ?? ""),
                    hint: "see `mvault --help` for the commands")
            }
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as VaultError {
            fail(error.description, hint: error.hint)
        } catch let error as KeyringError {
            fail(error.description, hint: nil)
        } catch let error as SealedFormatError {
            fail(error.description, hint: nil)
        } catch let error as IdentityError {
            fail(error.description, hint: nil)
        } catch let error as AgentError {
            fail(error.message, hint: nil)
        } catch let error as RemoteError {
            fail(error.message, hint: error.commandHint)
        } catch let error as ModelFormatError {
            fail(error.description, hint: nil)
        } catch let error as HSMError {
            fail(
                error.description, hint: "check the module path, the token label and the PIN; or unseal with --recovery"
            )
        } catch let error as AuditLogError {
            fail(error.description, hint: nil)
        } catch {
            exit(withError: error)
        }
    }

    static func fail(_ message: String, hint: String?) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        if let hint { FileHandle.standardError.write(Data("hint: \(hint)\n".utf8)) }
        Glibc.exit(1)
    }
}

/// `--vault DIR`, shared by every command that works on an existing vault.
struct VaultOptions: ParsableArguments {
    @Option(name: .long, help: "The vault directory (default: $MVAULT_VAULT, else the current directory).")
    var vault: String?

    var url: URL {
        let path = vault ?? ProcessInfo.processInfo.environment["MVAULT_VAULT"] ?? "."
        return URL(fileURLWithPath: path)
    }

    /// The vault's layout; throws unless a vault is there.
    func layout() throws -> VaultLayout {
        let layout = VaultLayout(root: url)
        try layout.requireVault()
        return layout
    }
}

struct Completions: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a shell completion script: mvault completions bash|zsh|fish.",
        discussion: """
            bash: mvault completions bash > /etc/bash_completion.d/mvault; zsh: mvault completions zsh > \
            "${fpath[1]}/_mvault"; fish: mvault completions fish > ~/.config/fish/completions/mvault.fish.
            """)

    @Argument(help: "bash, zsh or fish.") var shell: String

    func run() throws {
        guard let kind = CompletionShell(rawValue: shell) else {
            throw ValidationError("unknown shell '\(shell)': use bash, zsh or fish")
        }
        print(MVault.completionScript(for: kind))
    }
}
