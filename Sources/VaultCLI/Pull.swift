import ArgumentParser
import Foundation
import VaultCore
import VaultServices

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model version's files to a directory, each checked against its SHA-256.",
        discussion: """
            From a server (after `mvault login`), every model file (safetensors, GGUF) comes \
            fingerprinted for you: the vault's owner mark and your own recipient code are in its \
            weights, so a leaked copy can be traced to this pull (`mvault trace`). Other files come \
            as they are. An interrupted pull resumes where it stopped when run again: files it finished \
            are kept (their SHA-256 is checked), a partial one continues with a Range request. Any other \
            file in the way is refused unless --force, which overwrites it. Every pull is recorded.

            From a local vault (--vault), files come as they were pushed, unless --recipient asks \
            for a copy fingerprinted for someone outside the vault.
            """)

    @OptionGroup var options: VaultOptions

    @Argument(help: "namespace/name, or namespace/name@VERSION (default: the latest version).")
    var reference: String

    @Option(name: [.short, .customLong("output")], help: "Directory to write the files into.")
    var output: String

    @Flag(help: "Overwrite files that already exist.")
    var force = false

    @Option(
        help: ArgumentHelp(
            "Fingerprint the copy for NAME, someone outside the vault (an offline hand-over).",
            discussion: "From a server this needs the push capability on the model.", valueName: "NAME"))
    var recipient: String?

    @Flag(help: "From a server: the unmarked original (needs the push capability; the pull is recorded as such).")
    var unmarked = false

    func validate() throws {
        if unmarked && recipient != nil {
            throw ValidationError(
                "--unmarked and --recipient exclude each other: a copy is either the original or marked")
        }
    }

    func run() async throws {
        let ref = try ModelReference(parsing: reference)
        let copy: PullCopy = recipient.map { .recipient($0) } ?? (unmarked ? .unmarked : .own)
        let bar = ProgressBar()
        let pulled = try await closing(try options.target()) {
            try await $0.pull(ref, to: URL(fileURLWithPath: output), force: force, copy: copy) {
                bar.update(file: $0.file, done: $0.bytesDone, total: $0.bytesTotal)
            }
        }
        for file in pulled.files {
            if file.kept {
                print("kept \(output)/\(ModelFilePath.displayed(file.path))  sha256:\(file.sha256) (already pulled)")
                continue
            }
            let check = file.verified ? "verified" : "size checked"
            let what = file.fingerprinted ? "fingerprinted, \(check)" : check
            print(
                "wrote \(output)/\(ModelFilePath.displayed(file.path))  \(Terminal.formatBytes(file.size))  sha256:\(file.sha256) (\(what))"
            )
        }
        let version = pulled.version
        switch copy {
        case .own: print("pulled \(version.model)@\(version.number)")
        case .unmarked: print("pulled \(version.model)@\(version.number) (the unmarked original; recorded)")
        case .recipient(let name):
            print("pulled \(version.model)@\(version.number) fingerprinted for \(name) (recorded)")
        }
    }
}
