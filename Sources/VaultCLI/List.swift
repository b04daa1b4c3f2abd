import ArgumentParser
import Foundation
import VaultCore
import VaultServices

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List models.")

    @OptionGroup var options: VaultOptions

    @Argument(help: "Only models in this namespace (`acme` or `acme/`).")
    var namespace: String?

    @OptionGroup var output: JSONOption

    struct Models: Encodable { var models: [ModelSummary] }

    func run() async throws {
        var filter: String?
        if let namespace {
            let trimmed = namespace.hasSuffix("/") ? String(namespace.dropLast()) : namespace
            try ModelName.validate(part: trimmed, in: namespace)
            filter = trimmed
        }
        let models = try await closing(try options.target()) { try await $0.list(namespace: filter) }
        if output.json { return try JSONOutput.print(Models(models: models)) }
        if models.isEmpty {
            print("no models")
            return
        }
        for model in models {
            let latest = model.latestVersion.map { "latest @\($0)" } ?? "no versions"
            print("\(model.name)  \(model.versionCount) version(s)  \(latest)")
        }
    }
}
