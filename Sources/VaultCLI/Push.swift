import ArgumentParser
import Foundation
import VaultCore
import VaultServices

struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store files (or directories of files) as a new version of a model.")

    @OptionGroup var options: VaultOptions

    @Argument(help: "Files or directories to store.")
    var paths: [String]

    @Option(help: "The model, as namespace/name.")
    var model: String

    @Option(help: "A note recorded with the version.")
    var note: String?

    func run() throws {
        let name = try ModelName(parsing: model)
        let vault = try openVault(options)
        let bar = ProgressBar()
        let version = try vault.push(paths.map { URL(fileURLWithPath: $0) }, to: name, note: note) {
            bar.update(file: $0.file, done: $0.bytesDone, total: $0.bytesTotal)
        }
        for file in version.files {
            print("stored \(file.path)  \(Terminal.formatBytes(file.size))  sha256:\(file.sha256)")
        }
        print(
            "pushed \(name)@\(version.number) (\(version.files.count) file(s), \(Terminal.formatBytes(version.totalSize)))"
        )
    }
}

/// Opens the vault named by `options` through its key agent.
func openVault(_ options: VaultOptions) throws -> LocalVault {
    let layout = VaultLayout(root: options.url)
    try layout.requireVault()
    return try LocalVault(layout: layout, keys: KeyAgentClient(layout: layout))
}
