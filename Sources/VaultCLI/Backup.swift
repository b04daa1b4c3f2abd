import ArgumentParser
import AuditLog
import Backup
import Foundation
import Storage
import VaultCore
import VaultServices

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Encrypted, incremental, verifiable backups of a vault.",
        discussion: """
            A backup is a set of snapshots at a destination directory. Every file is stored as an object \
            named by its SHA-256, so what is already there is never copied again; the models stay sealed, so \
            a stolen backup is useless without the unseal shares. Each snapshot's manifest is signed with the \
            vault's backup key (docs/backup.md).
            """,
        subcommands: [Create.self, List.self, Verify.self, Restore.self, Forget.self])

    /// The key manifests are checked with: --key, else the unsealed vault's, else the one kept at
    /// the destination (said so).
    struct KeyOptions: ParsableArguments {
        @Option(help: "The backup verifier key (name+hash+key) kept outside the backup.") var key: String?
        @Option(help: "A vault whose unsealed key agent gives the key (default: $MVAULT_VAULT).") var vault: String?

        func verifier(for destination: any BackupDestination) async throws -> (CheckpointVerifier, String) {
            if let key {
                return (try CheckpointVerifier(encoded: try String(contentsOfFile: key, encoding: .utf8)), key)
            }
            if let path = vault ?? ProcessInfo.processInfo.environment["MVAULT_VAULT"],
                let text = try? KeyAgentClient(layout: VaultLayout(root: URL(fileURLWithPath: path))).backupVerifier()
            {
                return (try CheckpointVerifier(encoded: text), "the vault's keyring")
            }
            guard let stored = try await Backups.storedKey(destination) else {
                throw VaultError.invalidArgument(
                    "\(destination.name) holds no backup (no \(Backups.keyObject)); check the path")
            }
            return (stored, "\(Backups.keyObject) at the destination (pass --key to rule out a replaced key)")
        }
    }

    static func open(_ text: String, create: Bool = false) throws -> any BackupDestination {
        try backupDestination(text, environment: ProcessInfo.processInfo.environment, create: create)
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a snapshot of the vault (it may keep serving meanwhile).",
            discussion: """
                Copies the metadata (SQLite's online backup), the sealed keyring, the audit log, the TLS files \
                and every sealed model file the metadata refers to. Needs the vault unsealed (`mvault unseal`): \
                the manifest is signed with the vault's backup key.
                """)
        @OptionGroup var vault: VaultOptions
        @Option(help: "The destination directory.") var to: String
        @Option(help: "The audit log directory (default: VAULT/audit).") var log: String?

        func run() async throws {
            let layout = try vault.layout()
            let destination = try BackupCommand.open(to, create: true)
            let source = BackupSource(
                layout: layout, metadata: try SQLiteMetadataStore(path: layout.metadataFile.path),
                auditDirectory: log.map { URL(fileURLWithPath: $0) } ?? layout.root.appendingPathComponent("audit"),
                keys: KeyAgentClient(layout: layout))
            let started = Date()
            do {
                let report = try await Backups.create(source, to: destination) { step in
                    Terminal.progress("backing up \(step)")
                }
                Terminal.progressDone()
                BackupStatus.record(
                    layout, destination: destination.name, snapshot: report.manifest.snapshot, error: nil)
                print("snapshot \(report.manifest.snapshot) at \(destination.name)")
                print(
                    "\(report.manifest.entries.count) files, \(Terminal.bytes(report.manifest.totalBytes)); copied \(report.copied) objects (\(Terminal.bytes(report.bytesCopied))), \(report.reused) already there; \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
                )
            } catch {
                Terminal.progressDone()
                BackupStatus.record(layout, destination: destination.name, snapshot: nil, error: "\(error)")
                throw error
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the complete snapshots at a destination.")
        @Option(help: "The destination directory.") var from: String
        @OptionGroup var keys: KeyOptions
        @OptionGroup var output: JSONOption

        struct Snapshot: Encodable {
            var snapshot: String
            var created: Date
            var files: Int
            var bytes: UInt64
        }

        struct Listing: Encodable {
            var snapshots: [Snapshot]
            /// Snapshots whose manifest does not verify.
            var invalid: [String]
        }

        func run() async throws {
            let destination = try BackupCommand.open(from)
            let (key, _) = try await keys.verifier(for: destination)
            let (manifests, problems) = try await Backups.snapshots(in: destination, key: key)
            if output.json {
                let snapshots = manifests.map {
                    Snapshot(snapshot: $0.snapshot, created: $0.created, files: $0.entries.count, bytes: $0.totalBytes)
                }
                return try JSONOutput.print(Listing(snapshots: snapshots, invalid: problems.map { "\($0)" }))
            }
            for manifest in manifests {
                print(
                    "\(manifest.snapshot)  \(Timestamp.format(manifest.created))  \(manifest.entries.count) files  \(Terminal.bytes(manifest.totalBytes))"
                )
            }
            for problem in problems { print("NOT VALID: \(problem)") }
            if manifests.isEmpty && problems.isEmpty { print("no snapshots at \(destination.name)") }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every snapshot's signature and that every object is there.",
            discussion: """
                With --read-data every object is read back and its SHA-256 checked against the signed \
                manifests (like restic's check --read-data). Names every missing or damaged object. \
                Exit status: 0 when intact, 1 otherwise.
                """)
        @Option(help: "The destination directory.") var from: String
        @Flag(help: "Read every byte back and check it.") var readData = false
        @OptionGroup var keys: KeyOptions

        func run() async throws {
            let destination = try BackupCommand.open(from)
            let (key, source) = try await keys.verifier(for: destination)
            let report = try await Backups.verify(destination, key: key, readData: readData) { step in
                Terminal.progress("reading \(step)")
            }
            Terminal.progressDone()
            print("key:       \(key.encoded) (from \(source))")
            print("snapshots: \(report.snapshots)")
            print(
                "objects:   \(report.objects)\(readData ? ", \(Terminal.bytes(report.bytesRead)) read and checked" : "")"
            )
            if report.problems.isEmpty {
                print("ok")
                return
            }
            for problem in report.problems { print("FAILED:    \(problem)") }
            throw ExitCode.failure
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a vault from a snapshot, checking every byte.",
            discussion: """
                The new vault is sealed and unseals with the original shares (or passphrase); its models, \
                versions, users, grants and audit log are those of the snapshot.
                """)
        @Option(help: "The destination the backups are in.") var from: String
        @Option(help: "A new or empty directory for the vault.") var to: String
        @Option(help: "The snapshot to restore (default: the latest).") var snapshot: String?
        @OptionGroup var keys: KeyOptions

        func run() async throws {
            let destination = try BackupCommand.open(from)
            let (key, source) = try await keys.verifier(for: destination)
            let target = URL(fileURLWithPath: to).standardizedFileURL
            let manifest = try await Backups.restore(from: destination, snapshot: snapshot, to: target, key: key) {
                Terminal.progress("restoring \($0)")
            }
            Terminal.progressDone()
            print("restored snapshot \(manifest.snapshot) (\(manifest.entries.count) files) to \(target.path)")
            print("manifest signed by \(key.encoded) (from \(source))")
            print("Unseal it with: mvault unseal --vault \(target.path)")
        }
    }

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove old snapshots by a retention policy, and the objects no snapshot needs.",
            discussion: "Keeps the newest snapshot of each of the last N hours, days and weeks (UTC), and the newest.")
        @Option(help: "The destination directory.") var from: String
        @Option(help: "Hourly snapshots to keep.") var keepHourly = 24
        @Option(help: "Daily snapshots to keep.") var keepDaily = 7
        @Option(help: "Weekly snapshots to keep.") var keepWeekly = 4
        @OptionGroup var keys: KeyOptions

        func run() async throws {
            let destination = try BackupCommand.open(from)
            let (key, _) = try await keys.verifier(for: destination)
            let (snapshots, objects) = try await Backups.forget(
                destination, key: key,
                retention: .init(hourly: keepHourly, daily: keepDaily, weekly: keepWeekly))
            print("removed \(snapshots.count) snapshot(s) and \(objects) object(s)")
        }
    }
}
