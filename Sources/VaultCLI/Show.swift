import ArgumentParser
import Foundation
import VaultCore
import VaultServices

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's versions, or one version's files.")

    @OptionGroup var options: VaultOptions

    @Argument(help: "namespace/name or namespace/name@VERSION.")
    var reference: String

    @OptionGroup var output: JSONOption

    struct Versions: Encodable {
        var model: String
        var versions: [VersionRecord]
    }

    func run() async throws {
        let ref = try ModelReference(parsing: reference)
        try await closing(try options.target()) { try await show(ref, $0) }
    }

    func show(_ ref: ModelReference, _ vault: any VaultTarget) async throws {
        let dates = ISO8601DateFormatter()
        if ref.version == nil {
            let versions = try await vault.versions(of: ref.model)
            if output.json { return try JSONOutput.print(Versions(model: ref.model.description, versions: versions)) }
            print("\(ref.model): \(versions.count) version(s)")
            for v in versions {
                let note = v.note.map { "  \"\($0)\"" } ?? ""
                print(
                    "  @\(v.number)  \(dates.string(from: v.createdAt))  \(v.files.count) file(s)  \(Terminal.formatBytes(v.totalSize))\(note)"
                )
            }
            return
        }
        let v = try await vault.version(ref)
        if output.json { return try JSONOutput.print(v) }
        print("\(v.model)@\(v.number)  created \(dates.string(from: v.createdAt))")
        if let note = v.note { print("note: \(note)") }
        for file in v.files {
            print("  \(ModelFilePath.displayed(file.path))  \(file.size) bytes  sha256:\(file.sha256)")
        }
    }
}
