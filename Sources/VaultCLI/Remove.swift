import ArgumentParser
import VaultCore
import VaultServices

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove one version of a model (its number is never reused).")

    @OptionGroup var options: VaultOptions

    @Argument(help: "namespace/name@VERSION.")
    var reference: String

    func run() async throws {
        let ref = try ModelReference(parsing: reference)
        guard let number = ref.version else {
            throw VaultError.invalidArgument("name the version to remove, e.g. \(ref.model)@1")
        }
        let removed = try await closing(try options.target()) { try await $0.remove(ref.model, version: number) }
        print("removed \(removed.model)@\(removed.number) (\(removed.files.count) file(s))")
    }
}
