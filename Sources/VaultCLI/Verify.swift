import ArgumentParser
import VaultCore
import VaultServices

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Authenticate every stored byte and check every file's SHA-256.")

    @OptionGroup var options: VaultOptions

    func run() throws {
        let result = try openVault(options).verify()
        for failure in result.failures { print("FAILED \(failure)") }
        print("\(result.checked) file(s) checked, \(result.failures.count) failed")
        if !result.failures.isEmpty {
            throw VaultError.integrity(file: "the vault", detail: "\(result.failures.count) file(s) failed")
        }
    }
}
