import ArgumentParser
import Backup
import Foundation
import VaultServices

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show whether the vault is sealed, and its key versions.")

    @OptionGroup var options: VaultOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let layout = VaultLayout(root: options.url)
        try layout.requireVault()
        let client = KeyAgentClient(layout: layout)
        let status = try client.status()
        var usage: [UInt32: Int] = [:]
        if !status.sealed {
            let vault = try LocalVault(layout: layout, keys: client)
            for file in try vault.wrappedFiles() { usage[file.kekVersion, default: 0] += 1 }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
            return
        }
        print("Vault:        \(layout.root.path)")
        print("Seal:         \(status.sealType)")
        if let line = Self.backupLine(layout) { print("Last backup:  \(line)") }
        if status.sealed {
            let progress = status.threshold > 0 ? " (\(status.sharesGiven) of \(status.threshold) shares given)" : ""
            print("State:        sealed\(progress)")
            print("hint: unseal with `mvault unseal --vault \(options.url.path)`")
            return
        }
        print("State:        unsealed")
        print("Key versions:")
        for v in status.versions {
            var notes: [String] = []
            if v.version == status.newestVersion { notes.append("active for new files") }
            if v.retired { notes.append("retired") }
            let files = usage[v.version] ?? 0
            let date = ISO8601DateFormatter().string(from: v.createdAt)
            print("  v\(v.version)  created \(date)  \(files) file(s)  \(notes.joined(separator: ", "))")
        }
    }

    /// The last backup's outcome, from `run/backup-status.json`.
    static func backupLine(_ layout: VaultLayout) -> String? {
        guard let b = BackupStatus.read(layout) else { return nil }
        let time = ISO8601DateFormatter()
        let success = b.lastSuccess.map {
            "\(time.string(from: $0)), snapshot \(b.lastSnapshot ?? "?") at \(b.destination)"
        }
        if let failed = b.lastFailure, failed > (b.lastSuccess ?? .distantPast) {
            return
                "failed \(time.string(from: failed)): \(b.lastError ?? "unknown error") (last success: \(success ?? "never"))"
        }
        return success
    }
}
