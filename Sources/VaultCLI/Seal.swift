import ArgumentParser
import VaultServices

struct Seal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal the vault: the key agent drops every key from memory and exits.")

    @OptionGroup var options: VaultOptions

    func run() throws {
        let layout = VaultLayout(root: options.url)
        try layout.requireVault()
        try KeyAgentClient(layout: layout).seal()
        print("Vault sealed.")
    }
}
