import ArgumentParser
import VaultCore
import VaultServices

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Authenticate every stored byte and check every file's SHA-256.")

    @OptionGroup var options: VaultOptions
    @OptionGroup var output: JSONOption

    struct Report: Encodable {
        struct Failure: Encodable {
            var file: String
            var error: String
            var hint: String?
        }
        var checked: Int
        var failures: [Failure]
    }

    func run() throws {
        let result = try openVault(options).verify()
        if output.json {
            try JSONOutput.print(
                Report(
                    checked: result.checked,
                    failures: result.failures.map { .init(file: $0.file, error: $0.error, hint: $0.hint) }))
        } else {
            for failure in result.failures { print("FAILED \(failure)") }
            print("\(result.checked) file(s) checked, \(result.failures.count) failed")
        }
        if !result.failures.isEmpty {
            // What to do depends on why each failed: a retired key wants a rewrap, not a restore.
            var hints: [String] = []
            for hint in result.failures.compactMap(\.hint) where !hints.contains(hint) { hints.append(hint) }
            throw VaultError.conflict(
                "\(result.failures.count) file(s) failed verification",
                hint: hints.isEmpty ? nil : hints.joined(separator: "; "))
        }
    }
}
