import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("CLI: mvault audit, against a real server and on the vault's host", .serialized)
struct AuditCLITests {
    @Test(
        "tail, search, hash and checkpoint over the API; verify and proofs on the host; tampering and rollback caught")
    func audit() async throws {
        try await RemoteTests().serve { s in
            #expect(try await s.login("ops").status == 0)
            let model = try s.cli.file("in/model.bin", size: 1000)
            #expect(try await s.mvault(["push", model.path, "--model", "acme/x"]).status == 0)
            #expect(
                try await s.mvault(["user", "add", "alice", "--role", "consumer"], stdin: RemoteTests.password).status
                    == 0)
            #expect(try await s.login("alice").status == 0)
            #expect(
                try await s.mvault(["pull", "acme/x", "-o", s.cli.root.appendingPathComponent("o").path], as: "alice")
                    .status == 0)
            #expect(try await s.mvault(["push", model.path, "--model", "acme/x"], as: "alice").status == 1)
            let dir = s.cli.root.appendingPathComponent("audit-early")
            try FileManager.default.copyItem(at: s.cli.vault.appendingPathComponent("audit"), to: dir)

            var r = try await s.mvault(["audit", "tail", "-n", "3"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.split(separator: "\n").count == 3)
            r = try await s.mvault(["audit", "search", "--actor", "alice", "--decision", "denied"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(
                r.stdout.contains(
                    "request  alice  127.0.0.1  POST /v1/models/{namespace}/{name}/uploads  acme/x  DENIED (no role or grant allows push on acme/x"
                ), "\(r.stdout)")
            r = try await s.mvault([
                "audit", "search", "--actor", "alice", "--action", "/files/", "--json", "--since", "1h",
            ])
            let pulls = try r.stdout.split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
            #expect(pulls.count == 2)  // HEAD and GET: a read is one entry, with its decision and outcome
            // Over the API, --json prints each entry's stored bytes (times to the millisecond).
            let stored = try String(
                contentsOf: s.cli.vault.appendingPathComponent("audit/entries.jsonl"), encoding: .utf8
            )
            .split(separator: "\n").map(String.init)
            r = try await s.mvault(["audit", "tail", "-n", "5", "--json"])
            let tail = r.stdout.split(separator: "\n").map(String.init)
            #expect(tail.count == 5 && tail.allSatisfy { stored.contains($0) }, "\(tail.first ?? "")")
            #expect(pulls.contains { ($0["result"] as? [String: Any])?["bytes"] as? Int == 1000 })
            r = try await s.mvault(["audit", "search", "--actor", "nobody-at-all"])
            #expect(r.status == 3 && r.stdout.isEmpty)
            r = try await s.mvault(["audit", "search", "--decision", "maybe"])
            #expect(r.status != 0 && r.stderr.contains("--decision must be allowed or denied"))
            r = try await s.mvault(["audit", "search", "--since", "yesterday"])
            #expect(r.status != 0 && r.stderr.contains("neither an RFC 3339 time"))
            r = try await s.mvault(["audit", "tail"], as: "alice")
            #expect(r.status == 1 && r.stderr.contains("access denied: no role or grant allows audit"), "\(r.stderr)")
            r = try await s.mvault(["audit", "hash", "-"], stdin: "some-session-id\n")
            #expect(r.stdout.hasPrefix("hmac-sha256:") && r.stdout.count == 77, "\(r.stdout)\(r.stderr)")
            let saved = s.cli.root.appendingPathComponent("saved-checkpoint.txt").path
            r = try await s.mvault(["audit", "checkpoint", "-o", saved])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("saved the checkpoint of"))

            // On the vault's host: the running server's keys give the verifier key.
            r = try await s.cli.run(["audit", "verify"])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.contains("(from the vault's keyring)"), "\(r.stdout)")
            #expect(r.stdout.contains("verified:    the log is intact"))
            for share in s.shares.prefix(3) { _ = try await s.cli.run(["unseal"], stdin: share) }
            r = try await s.cli.run(["audit", "verify", "--checkpoint", saved])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.contains("(from the vault's keyring)"))
            #expect(r.stdout.contains("saved checkpoint: consistent with the log"))
            r = try await s.cli.run(["audit", "hash", "some-session-id"])
            #expect(r.stdout.hasPrefix("hmac-sha256:"), "\(r.stderr)")
            r = try await s.cli.run(["audit", "proof", "inclusion", "3"])
            #expect(
                r.status == 0 && r.stdout.contains("verified: entry 3 is in the signed tree"), "\(r.stdout)\(r.stderr)")
            r = try await s.cli.run(["audit", "proof", "consistency", "2"])
            #expect(
                r.status == 0 && r.stdout.contains("verified: the first 2 entries are unchanged"),
                "\(r.stdout)\(r.stderr)")
            r = try await s.cli.run(["audit", "proof", "sideways", "2"])
            #expect(r.status != 0 && r.stderr.contains("either inclusion or consistency"))

            // Stop the server, then tamper.
            kill(s.server.processIdentifier, SIGTERM)
            await CLI.waitForExit(s.server)
            // Its keys went with it: a key agent on the host holds them now.
            for share in s.shares.prefix(3) { _ = try await s.cli.run(["unseal"], stdin: share) }
            let entries = s.cli.vault.appendingPathComponent("audit/entries.jsonl")
            let original = try String(contentsOf: entries, encoding: .utf8)
            var lines = original.split(separator: "\n").map(String.init)
            lines[5] = lines[5].replacingOccurrences(of: "127.0.0.1", with: "10.0.0.1")
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: entries)
            r = try await s.cli.run(["audit", "verify"])
            #expect(r.status == 1)
            #expect(
                r.stdout.contains("FAILED:      entry 5 was edited: entry 6 records a different hash of it"),
                "\(r.stdout)")
            try Data(original.utf8).write(to: entries)

            // A rollback to the copy taken earlier passes on its own; the saved checkpoint catches it.
            let audit = s.cli.vault.appendingPathComponent("audit")
            try FileManager.default.removeItem(at: audit)
            try FileManager.default.copyItem(at: dir, to: audit)
            r = try await s.cli.run(["audit", "verify"])
            #expect(r.status == 0, "\(r.stdout)")
            r = try await s.cli.run(["audit", "verify", "--checkpoint", saved])
            #expect(r.status == 1)
            #expect(r.stdout.contains("FAILED:      the log was rolled back or truncated"), "\(r.stdout)")

            // A replaced verifier key is caught against the keyring.
            try Data("other+00000000+AQ==\n".utf8).write(to: audit.appendingPathComponent("verifier.key"))
            r = try await s.cli.run(["audit", "verify"])
            #expect(
                r.status == 1 && r.stderr.contains("it is not this vault's checkpoint key: it was replaced"),
                "\(r.stderr)")
        }
    }
}
