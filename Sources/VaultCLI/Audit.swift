import ArgumentParser
import AuditLog
import Foundation
import Keyring
import VaultCore
import VaultServices

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify, read and search the tamper-evident audit log.",
        discussion: """
            The server records every request: its decision before it is served, its outcome after. Entries \
            form an RFC 6962 Merkle tree with signed checkpoints (docs/audit.md). `verify` and `proof` read the \
            log on the vault's host; `tail`, `search`, `checkpoint` and `hash` also work against a server \
            after `mvault login` (capability: audit).
            """,
        subcommands: [Verify.self, Repair.self, Tail.self, Search.self, Hash.self, SaveCheckpoint.self, Proof.self])

    /// Where the log is: `--log DIR`, else the vault's `audit` directory.
    struct Location: ParsableArguments {
        @OptionGroup var vault: VaultOptions
        @Option(help: "The audit log directory (default: VAULT/audit).") var log: String?

        var layout: AuditLogLayout {
            AuditLogLayout(directory: log.map { URL(fileURLWithPath: $0) } ?? vault.url.appendingPathComponent("audit"))
        }

        /// The server after `mvault login`, unless a vault or log directory was named.
        func remote() throws -> RemoteClient? {
            guard log == nil, let profile = try vault.remoteProfile() else { return nil }
            return try RemoteClient(profile)
        }

        /// The checkpoint key to trust: `--key`, else the unsealed keyring's (which also proves the
        /// log's own copy was not replaced), else the log's `verifier.key`; and where it came from.
        func verifier(key: String?) throws -> (CheckpointVerifier, String) {
            let onDisk = (try? String(contentsOf: layout.verifierKey, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let agent = KeyAgentClient(layout: VaultLayout(root: vault.url))
            if let key {
                return (try CheckpointVerifier(encoded: try String(contentsOfFile: key, encoding: .utf8)), key)
            }
            if let fromKeyring = try? agent.auditVerifier() {
                if let onDisk, onDisk != fromKeyring {
                    throw VaultError.integrity(
                        file: layout.verifierKey.path, detail: "it is not this vault's checkpoint key: it was replaced")
                }
                return (try CheckpointVerifier(encoded: fromKeyring), "the vault's keyring")
            }
            if let onDisk {
                return (
                    try CheckpointVerifier(encoded: onDisk),
                    "\(layout.verifierKey.path) (unseal the vault, or pass --key, to rule out a replaced key)"
                )
            }
            throw VaultError.invalidArgument("no verifier key: unseal the vault or pass --key FILE")
        }

        func requireLog() throws -> AuditLogLayout {
            guard FileManager.default.fileExists(atPath: layout.entries.path) else {
                throw VaultError.invalidArgument(
                    "no audit log at \(layout.directory.path) (the server starts one when it is first unsealed); pass --vault or --log"
                )
            }
            return layout
        }

        /// Every entry, from the log file or the server.
        func events() async throws -> [AuditEvent] {
            if let client = try remote() {
                return try await client.using { client in
                    var out: [AuditEvent] = []
                    while true {
                        // Read as the log stores them, to the millisecond, so --json prints the stored bytes.
                        let page = try AuditEvent.decoder.decode(
                            Page.self,
                            from: try await client.call(.GET, "/v1/audit/entries?start=\(out.count)&limit=10000"))
                        out += page.entries
                        if page.entries.isEmpty || out.count >= page.size { return out }
                    }
                }
            }
            return try requireLog().readEntries(start: 0, limit: .max).map { try AuditEvent.decode($0) }
        }
    }

    struct Page: Decodable {
        var size: Int
        var entries: [AuditEvent]
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the log and check it against its chain and its signed checkpoints.",
            discussion: """
                Names the first bad entry: edited, deleted, inserted or reordered entries, truncation, and \
                forged checkpoints. A rollback of the whole log to an older state shows only against a \
                checkpoint saved elsewhere earlier: pass it with --checkpoint (save one with \
                `mvault audit checkpoint -o FILE`). Checkpoints are checked with the vault's key from the \
                unsealed key agent, else with --key, else with the log's own verifier.key.
                Exit status: 0 when intact, 1 otherwise.
                """)
        @OptionGroup var location: Location
        @Option(help: "A signed checkpoint saved earlier outside the vault.") var checkpoint: String?
        @Option(help: "The checkpoint verifier key (name+hash+key), kept outside the vault.") var key: String?

        func run() throws {
            let layout = try location.requireLog()
            let (verifier, source) = try location.verifier(key: key)
            let external = try checkpoint.map { try String(contentsOfFile: $0, encoding: .utf8) }
            let report = try AuditVerifier.verify(layout: layout, verifier: verifier, external: external)
            print("log:         \(layout.entries.path)")
            print("key:         \(verifier.encoded) (from \(source))")
            print("entries:     \(report.entries)")
            print(
                "checkpoints: \(report.checkpointsChecked) checked\(report.latestCheckpoint.map { ", latest at \($0.size)" } ?? "")"
            )
            if external != nil, report.problem == nil { print("saved checkpoint: consistent with the log") }
            if report.incompleteTail {
                print("note:        the last line is incomplete (a write cut short, never acknowledged)")
            }
            if let problem = report.problem {
                print("FAILED:      \(problem)")
                throw ExitCode.failure
            }
            print("verified:    the log is intact")
        }
    }

    struct Repair: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recover a log that fails verification, keeping every entry that verifies.",
            discussion: """
                Keeps the longest run of entries from the start that verifies against its chain and its signed \
                checkpoints; moves the rest into VAULT/audit/cut-TIME.jsonl (and the checkpoints past the cut \
                into cut-TIME-checkpoints/), and appends an audit.repair entry saying what was cut and where it \
                went. Nothing is deleted. Stop the server first: the log must not be open for writing. \
                Exit status: 0 when repaired or already intact.
                """)
        @OptionGroup var location: Location
        @Option(help: "The checkpoint verifier key (name+hash+key), kept outside the vault.") var key: String?
        @Flag(help: "Print the report as JSON.") var json = false

        struct Output: Encodable {
            var kept: Int
            var cutEntries: Int
            var cutCheckpoints: Int
            var problem: String?
            var cutFile: String?
        }

        func run() throws {
            let layout = try location.requireLog()
            let (verifier, _) = try location.verifier(key: key)
            let report = try AuditRepair.repair(layout: layout, verifier: verifier)
            if json {
                let output = Output(
                    kept: report.kept, cutEntries: report.cutEntries, cutCheckpoints: report.cutCheckpoints,
                    problem: report.problem, cutFile: report.cutFile?.path)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(output), as: UTF8.self))
                return
            }
            guard let problem = report.problem else {
                print("The log is intact (\(report.kept) entries); nothing to repair.")
                return
            }
            print("problem:     \(problem)")
            print("kept:        \(report.kept == 0 ? "no entry verified" : "entries 0…\(report.kept - 1), verified")")
            print("cut:         \(report.cutEntries) entries, \(report.cutCheckpoints) checkpoint(s)")
            print("moved to:    \(report.cutFile?.path ?? "-")")
            print("recorded:    entry \(report.kept) (audit.repair); run `mvault audit verify` to check")
        }
    }

    struct Filters: ParsableArguments {
        @Option(help: "Only entries by this user.") var actor: String?
        @Option(help: "Only entries about this model (namespace/name).") var model: String?
        @Option(help: "Only actions containing this text (e.g. POST, /files/, auth/login).") var action: String?
        @Option(help: "Only allowed or denied requests.") var decision: String?
        @Option(help: "Entries at or after this time (RFC 3339, or e.g. 30m, 2h, 7d ago).") var since: String?
        @Option(help: "Entries before this time (RFC 3339, or 30m, 2h, 7d ago).") var until: String?
        @Flag(help: "JSON lines, as stored.") var json = false

        func validate() throws {
            if let decision, !["allowed", "denied"].contains(decision) {
                throw ValidationError("--decision must be allowed or denied")
            }
            _ = try since.map(Self.time)
            _ = try until.map(Self.time)
        }

        static func time(_ text: String) throws -> Date {
            if let date = try? Date(text, strategy: .iso8601) { return date }
            let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            if let unit = text.last.flatMap({ units[$0] }), let n = Double(text.dropLast()), n >= 0 {
                return Date().addingTimeInterval(-n * unit)
            }
            throw ValidationError("'\(text)' is neither an RFC 3339 time nor an age like 30m, 2h or 7d")
        }

        func matches(_ e: AuditEvent) throws -> Bool {
            if let actor, e.actor.user != actor { return false }
            if let model, e.target?.model != model { return false }
            if let action, !e.action.contains(action) { return false }
            if let decision, e.decision?.allowed != (decision == "allowed") { return false }
            if let since, e.time < (try Self.time(since)) { return false }
            if let until, e.time >= (try Self.time(until)) { return false }
            return true
        }

        func show(_ events: [AuditEvent]) throws {
            for e in events {
                if json {
                    print(String(decoding: try e.encoded(), as: UTF8.self))
                    continue
                }
                var who = e.actor.user ?? "-"
                if let token = e.actor.tokenID { who += " (token \(token))" }
                var what =
                    e.target.map { t in
                        [t.model.map { m in t.version.map { "\(m)@\($0)" } ?? m }, t.file, t.name].compactMap { $0 }
                            .joined(
                                separator: " ")
                    } ?? ""
                if let d = e.decision {
                    what += (what.isEmpty ? "" : "  ") + (d.allowed ? "ALLOWED" : "DENIED") + " (\(d.rule))"
                }
                if let r = e.result {
                    what +=
                        (what.isEmpty ? "" : "  ") + "→ \(r.status)" + (r.bytes.map { " \($0) B" } ?? "")
                        + (r.error.map { " \($0)" } ?? "")
                }
                // Names and errors in entries came from clients: escaped, never raw, on a terminal.
                print(
                    ModelFilePath.displayed(
                        "\(e.seq)  \(e.time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))  \(e.phase)  \(who)  \(e.sourceIP ?? "-")  \(e.action)  \(what)"
                    ))
            }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the last entries.")
        @OptionGroup var location: Location
        @Option(name: .short, help: "How many.") var n = 20
        @Flag(help: "JSON lines, as stored.") var json = false

        func run() async throws {
            guard n > 0 else { throw ValidationError("-n must be at least 1") }
            var filters = Filters()
            filters.json = json
            try filters.show(Array(try await location.events().suffix(n)))
        }
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the entries that match every filter given.",
            discussion: "Exit status: 0 when something matched, 3 when nothing did, 1 on errors.")
        @OptionGroup var location: Location
        @OptionGroup var filters: Filters

        func run() async throws {
            let found = try await location.events().filter { try filters.matches($0) }
            try filters.show(found)
            if found.isEmpty { throw ExitCode(3) }
        }
    }

    struct Hash: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The HMAC the log shows for VALUE (a session id, say), to search for it.",
            discussion: "Read from standard input when VALUE is -, so it stays out of the shell history.")
        @OptionGroup var location: Location
        @Argument(help: "The value, or - to read it from standard input.") var value: String

        func run() async throws {
            let text = value == "-" ? (readLine(strippingNewline: true) ?? "") : value
            guard !text.isEmpty else { throw ValidationError("give a value to hash") }
            if let client = try location.remote() {
                struct Answer: Decodable { var hmac: String }
                print(
                    try await client.using {
                        try await $0.call(Answer.self, .POST, "/v1/audit/hash", json: ["value": text])
                    }.hmac)
                return
            }
            let agent = KeyAgentClient(layout: VaultLayout(root: location.vault.url))
            try agent.requireUnsealed()
            print(try agent.auditHash(text))
        }
    }

    struct SaveCheckpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "checkpoint",
            abstract: "Print (or save) the latest signed checkpoint, to keep outside the vault.")
        @OptionGroup var location: Location
        @Option(name: .shortAndLong, help: "Write it to FILE.") var output: String?

        func run() async throws {
            let note: String
            if let client = try location.remote() {
                note = String(
                    decoding: try await client.using { try await $0.call(.GET, "/v1/audit/checkpoint") }, as: UTF8.self)
            } else {
                guard let latest = try location.requireLog().checkpointFiles().last else {
                    throw VaultError.invalidArgument("the log has no checkpoint yet")
                }
                note = try String(contentsOf: latest, encoding: .utf8)
            }
            guard let output else {
                print(note, terminator: "")
                return
            }
            try AtomicFile.write(Data(note.utf8), to: URL(fileURLWithPath: output), mode: 0o644)
            print("saved the checkpoint of \(note.split(separator: "\n")[1]) entries to \(output)")
        }
    }

    struct Proof: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove an entry is in the log, or that the log only grew between two sizes.",
            discussion: """
                `proof inclusion SEQ` and `proof consistency FIRST [SECOND]`, computed from the log file and \
                checked against its latest signed checkpoint (SECOND defaults to its size). Hashes in hex.
                """)
        @OptionGroup var location: Location
        @Argument(help: "inclusion or consistency.") var kind: String
        @Argument(help: "The entry (inclusion) or the older tree size (consistency).") var first: Int
        @Argument(help: "The newer tree size (consistency).") var second: Int?

        func run() throws {
            guard ["inclusion", "consistency"].contains(kind) else {
                throw ValidationError("the proof is either inclusion or consistency")
            }
            let layout = try location.requireLog()
            let verifier = try CheckpointVerifier(encoded: String(contentsOf: layout.verifierKey, encoding: .utf8))
            let report = try AuditVerifier.verify(layout: layout, verifier: verifier)
            if let problem = report.problem { throw VaultError.integrity(file: layout.entries.path, detail: problem) }
            guard let checkpoint = report.latestCheckpoint else {
                throw VaultError.invalidArgument("the log has no signed checkpoint to prove against yet")
            }
            let leaves = report.leafHashes(checkpoint.size)
            print("checkpoint: \(checkpoint.size) entries, root \(Hex.encode(checkpoint.root))")
            if kind == "inclusion" {
                guard first >= 0, first < checkpoint.size else {
                    throw VaultError.invalidArgument(
                        "entry \(first) is not in the checkpoint's \(checkpoint.size) entries")
                }
                let proof = MerkleTree.inclusionProof(index: first, leaves[...])
                let ok = MerkleTree.verifyInclusion(
                    leaf: leaves[first], index: first, size: checkpoint.size, proof: proof, root: checkpoint.root)
                print("entry \(first): leaf \(Hex.encode(leaves[first]))")
                for (i, hash) in proof.enumerated() { print("proof[\(i)]: \(Hex.encode(hash))") }
                print(ok ? "verified: entry \(first) is in the signed tree" : "FAILED: the proof does not verify")
                if !ok { throw ExitCode.failure }
                return
            }
            let newer = second ?? checkpoint.size
            guard first >= 1, first <= newer, newer <= checkpoint.size else {
                throw VaultError.invalidArgument("need 1 ≤ FIRST ≤ SECOND ≤ \(checkpoint.size)")
            }
            let proof = MerkleTree.consistencyProof(from: first, leaves[0..<newer])
            let ok = MerkleTree.verifyConsistency(
                first: first, second: newer, firstRoot: MerkleTree.root(leaves[0..<first]),
                secondRoot: MerkleTree.root(leaves[0..<newer]), proof: proof)
            print("tree \(first): root \(Hex.encode(MerkleTree.root(leaves[0..<first])))")
            print("tree \(newer): root \(Hex.encode(MerkleTree.root(leaves[0..<newer])))")
            for (i, hash) in proof.enumerated() { print("proof[\(i)]: \(Hex.encode(hash))") }
            print(ok ? "verified: the first \(first) entries are unchanged in the tree of \(newer)" : "FAILED")
            if !ok { throw ExitCode.failure }
        }
    }
}

extension RemoteClient {
    /// Runs `body`, then releases the connections, whatever happened.
    func using<T>(_ body: (RemoteClient) async throws -> T) async throws -> T {
        do {
            let result = try await body(self)
            try? await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}
