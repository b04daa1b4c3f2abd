import ArgumentParser
import VaultCore
import VaultServices

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage key-encryption key (KEK) versions.",
        subcommands: [Rotate.self, Rewrap.self, Retire.self])

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a KEK version; new files are wrapped under it.")
        @OptionGroup var options: VaultOptions

        func run() throws {
            let vault = try openVault(options)
            try vault.keys.requireUnsealed()
            let version = try KeyAgentClient(layout: vault.layout).rotate()
            print("Key version \(version) is now active for new files.")
            print("hint: run `mvault key rewrap` to move existing files to it")
        }
    }

    struct Rewrap: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrap every data key under the newest KEK version (payloads are not decrypted).")
        @OptionGroup var options: VaultOptions

        func run() throws {
            let vault = try openVault(options)
            let count = try vault.rewrap { print("rewrapped \($0)") }
            print("\(count) file(s) rewrapped to key version \(try vault.keys.newestVersion())")
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire every KEK version below VERSION: files under them can no longer be read.",
            discussion: "Retired keys are kept so `mvault key rewrap` can still move files off them.")
        @OptionGroup var options: VaultOptions

        @Option(help: "The lowest version still allowed to decrypt.")
        var below: UInt32

        func run() throws {
            let vault = try openVault(options)
            try vault.keys.requireUnsealed()
            let floor = try KeyAgentClient(layout: vault.layout).retire(below: below)
            print("Key versions below \(floor) are retired.")
            let stranded = try vault.filesUnderRetiredKeys()
            if stranded.isEmpty {
                print("No stored file uses a retired version.")
            } else {
                print("\(stranded.count) file(s) are still wrapped under retired versions and cannot be read:")
                for file in stranded { print("  \(file.name)  (key version \(file.kekVersion))") }
                print("hint: run `mvault key rewrap` to move them to the newest version")
            }
        }
    }
}
