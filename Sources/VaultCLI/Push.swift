import ArgumentParser
import Foundation
import VaultCore
import VaultServices

struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store files (or directories of files) as a new version of a model.")

    @OptionGroup var options: VaultOptions

    @Argument(help: "Files or directories to store.")
    var paths: [String]

    @Option(help: "The model, as namespace/name.")
    var model: String

    @Option(help: "A note recorded with the version.")
    var note: String?

    func run() async throws {
        let name = try ModelName(parsing: model)
        let bar = ProgressBar()
        let version = try await closing(try options.target()) {
            try await $0.push(paths.map { URL(fileURLWithPath: $0) }, to: name, note: note) {
                bar.update(file: $0.file, done: $0.bytesDone, total: $0.bytesTotal)
            }
        }
        for file in version.files {
            print(
                "stored \(ModelFilePath.displayed(file.path))  \(Terminal.formatBytes(file.size))  sha256:\(file.sha256)"
            )
        }
        print(
            "pushed \(name)@\(version.number) (\(version.files.count) file(s), \(Terminal.formatBytes(version.totalSize)))"
        )
    }
}

/// Runs `body` against `target`, then releases it.
func closing<T>(_ target: any VaultTarget, _ body: (any VaultTarget) async throws -> T) async throws -> T {
    do {
        let result = try await body(target)
        await target.close()
        return result
    } catch {
        await target.close()
        throw error
    }
}

/// Opens the vault named by `options` through its key agent.
func openVault(_ options: VaultOptions) throws -> LocalVault {
    let layout = VaultLayout(root: options.url)
    try layout.requireVault()
    return try LocalVault(layout: layout, keys: KeyAgentClient(layout: layout))
}
