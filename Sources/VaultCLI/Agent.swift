import ArgumentParser
import Foundation
import VaultServices

#if canImport(Glibc)
    import Glibc
#endif

struct Agent: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the key agent for a vault (started by `mvault unseal`).", shouldDisplay: false)

    @OptionGroup var options: VaultOptions

    func run() throws {
        let layout = VaultLayout(root: options.url)
        try layout.requireVault()
        _ = setsid()
        try KeyAgent(layout: layout).run()
    }
}
