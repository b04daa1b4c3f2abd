import ArgumentParser
import Foundation
import VaultCore
import VaultServices

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model version's files to a directory, each checked against its SHA-256.",
        discussion: """
            From a server (after `mvault login`), an interrupted pull resumes where it stopped \
            when run again.
            """)

    @OptionGroup var options: VaultOptions

    @Argument(help: "namespace/name, or namespace/name@VERSION (default: the latest version).")
    var reference: String

    @Option(name: [.short, .customLong("output")], help: "Directory to write the files into.")
    var output: String

    @Flag(help: "Overwrite files that already exist.")
    var force = false

    func run() async throws {
        let ref = try ModelReference(parsing: reference)
        let bar = ProgressBar()
        let version = try await closing(try options.target()) {
            try await $0.pull(ref, to: URL(fileURLWithPath: output), force: force) {
                bar.update(file: $0.file, done: $0.bytesDone, total: $0.bytesTotal)
            }
        }
        for file in version.files {
            print("wrote \(output)/\(file.path)  \(Terminal.formatBytes(file.size))  sha256:\(file.sha256) (verified)")
        }
        print("pulled \(version.model)@\(version.number)")
    }
}
