import Crypto
import Foundation
import ModelFormats
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Six 1024 × 1024 F16 matrices (6.3 M weights: the default strength gives each mark z ≈ 10)
/// and a norm, with made-up weights.
func fingerprintModel() throws -> [UInt8] {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func values(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count * 2)
        for i in 0..<count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            let bits = Float16((Float(state >> 40) / Float(1 << 24) - 0.5) * 0.1).bitPattern
            out[2 * i] = UInt8(bits & 0xFF)
            out[2 * i + 1] = UInt8(bits >> 8)
        }
        return out
    }
    let matrices = (0..<6).map { layer in
        SafetensorsWriter.Tensor(
            name: "model.layers.\(layer).mlp.up_proj.weight", dtype: .f16, shape: [1024, 1024],
            data: values(1024 * 1024))
    }
    return try SafetensorsWriter.encode(
        matrices + [.init(name: "model.norm.weight", dtype: .f16, shape: [1024], data: values(1024))],
        metadata: ["format": "pt"])
}

@Suite("CLI: fingerprinted pulls and trace, through a real server", .serialized)
struct FingerprintTests {
    @Test("each account's pull is its own deterministic copy; trace names the account, token or offline recipient")
    func pullAndTrace() async throws {
        try await RemoteTests().serve { s in
            let password = RemoteTests.password
            #expect(try await s.login("ops").status == 0)
            let original = try fingerprintModel()
            let input = s.cli.root.appendingPathComponent("in")
            try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
            try Data(original).write(to: input.appendingPathComponent("model.safetensors"))
            try Data("{\"hidden_size\": 1024}\n".utf8).write(to: input.appendingPathComponent("config.json"))
            var r = try await s.mvault([
                "push", input.appendingPathComponent("model.safetensors").path,
                input.appendingPathComponent("config.json").path, "--model", "acme/small",
            ])
            #expect(r.status == 0, "\(r.stderr)")
            for user in ["alice", "bob"] {
                r = try await s.mvault(["user", "add", user, "--role", "consumer"], stdin: password)
                #expect(r.status == 0, "\(r.stderr)")
                #expect(try await s.login(user).status == 0)
            }

            func pull(_ who: String, _ dir: String, _ extra: [String] = [], env: [String: String]? = nil) async throws
                -> (CLI.Result, [UInt8])
            {
                let out = s.cli.root.appendingPathComponent(dir)
                let args = ["pull", "acme/small", "-o", out.path, "--force"] + extra
                let r =
                    if let env {
                        try await s.cli.run(args, vaultFlag: false, environment: env)
                    } else {
                        try await s.mvault(args, as: who)
                    }
                let bytes = (try? Data(contentsOf: out.appendingPathComponent("model.safetensors"))).map { [UInt8]($0) }
                return (r, bytes ?? [])
            }
            let (aliceRun, alice) = try await pull("alice", "alice")
            #expect(aliceRun.status == 0, "\(aliceRun.stderr)")
            #expect(aliceRun.stdout.contains("model.safetensors  12.6 MB  sha256:"))
            #expect(aliceRun.stdout.contains("(fingerprinted, verified)"))
            #expect(aliceRun.stdout.contains("config.json  22 B  sha256:"))
            let config = try Data(contentsOf: s.cli.root.appendingPathComponent("alice/config.json"))
            #expect(config == Data("{\"hidden_size\": 1024}\n".utf8))
            #expect(alice.count == original.count && alice != original)
            // The header and the unmarked norm are the original's bytes.
            let file = try SafetensorsFile(source: BufferSource(original))
            #expect(alice[..<Int(file.dataStart)] == original[..<Int(file.dataStart)])
            let norm = try #require(file.tensors.first { $0.name == "model.norm.weight" })
            #expect(alice[Int(norm.bytes.lowerBound)...] == original[Int(norm.bytes.lowerBound)...])

            // Deterministic per recipient; another account gets another copy.
            let (_, aliceAgain) = try await pull("alice", "alice-again")
            #expect(aliceAgain == alice)
            let (bobRun, bob) = try await pull("bob", "bob")
            #expect(bobRun.status == 0, "\(bobRun.stderr)")
            #expect(bob != alice && bob.count == alice.count)

            // bob's API token gets a copy of its own.
            r = try await s.mvault(
                ["token", "create", "ci", "--scope", "acme/*:pull,read", "--expires", "1d"], as: "bob")
            let secret = try #require(
                r.stdout.split(separator: "\n").first { $0.hasPrefix("secret") }?.split(separator: " ").last
                    .map(String.init))
            let tokenID = String(secret.split(separator: "_")[1])
            let (tokenRun, viaToken) = try await pull(
                "bob", "token", env: ["MVAULT_ADDR": s.base, "MVAULT_TOKEN": secret, "MVAULT_CA": s.ca])
            #expect(tokenRun.status == 0, "\(tokenRun.stderr)")
            #expect(viaToken != bob && viaToken != alice)

            // The original and offline copies need the push capability; refused, nothing is written.
            for extra in [["--unmarked"], ["--recipient", "Partner Corp"]] {
                let (refused, written) = try await pull("alice", "refused", extra)
                #expect(refused.status == 1)
                #expect(refused.stderr.contains("needs the push capability"), "\(refused.stderr)")
                #expect(written.isEmpty)
            }
            r = try await s.mvault(["pull", "acme/small", "-o", "x", "--unmarked", "--recipient", "a"], as: "ops")
            #expect(r.status != 0 && r.stderr.contains("--unmarked and --recipient exclude each other"))
            let (plainRun, plain) = try await pull("ops", "plain", ["--unmarked"])
            #expect(plainRun.stdout.contains("(the unmarked original; recorded)"), "\(plainRun.stderr)")
            #expect(plain == original)
            let (partnerRun, partner) = try await pull("ops", "partner", ["--recipient", "Partner Corp"])
            #expect(partnerRun.stdout.contains("fingerprinted for Partner Corp (recorded)"), "\(partnerRun.stderr)")
            #expect(partner != original && partner != alice)

            // A model file that does not parse cannot carry a fingerprint: refused, naming it; the
            // original is still there for those who may push.
            let broken = input.appendingPathComponent("broken.safetensors")
            try Data("{\"not\": \"a model\"}".utf8).write(to: broken)
            #expect(try await s.mvault(["push", broken.path, "--model", "acme/broken"]).status == 0)
            r = try await s.mvault(
                ["pull", "acme/broken", "-o", s.cli.root.appendingPathComponent("b").path], as: "alice")
            #expect(r.status == 1)
            #expect(r.stderr.contains("acme/broken@1/broken.safetensors cannot be fingerprinted"), "\(r.stderr)")
            #expect(r.stderr.contains("--unmarked"))
            #expect(
                !FileManager.default.fileExists(atPath: s.cli.root.appendingPathComponent("b/broken.safetensors").path))
            r = try await s.mvault([
                "pull", "acme/broken", "-o", s.cli.root.appendingPathComponent("b").path, "--unmarked",
            ])
            #expect(r.status == 0, "\(r.stderr)")
            r = try await s.mvault(["pull", "acme/small", "-o", "x", "--recipient", "tab\there"])
            #expect(r.status == 1 && r.stderr.contains("a recipient name is 1 to 128 characters"), "\(r.stderr)")

            // HTTP: the ETag is per recipient, Range requests return slices of the same copy,
            // If-None-Match gives 304, and HEAD tells the copy's digest.
            let profile = try JSONSerialization.jsonObject(
                with: Data(contentsOf: s.cli.root.appendingPathComponent("config-alice/profile.json")))
            let session = try #require((profile as? [String: Any])?["token"] as? String)
            let url = s.base + "/v1/models/acme/small/versions/1/files/model.safetensors"
            let auth = ["-H", "Authorization: Bearer \(session)"]
            r = try await s.cli.curl(["-I"] + auth + [url])
            let headers = r.stdout.lowercased()
            #expect(headers.contains("x-mvault-fingerprint: owner+recipient"), "\(r.stdout)")
            let etag = try #require(
                r.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("etag:") }?.dropFirst(6)
                    .trimmingCharacters(in: .whitespaces))
            #expect(etag.hasPrefix("\"m1-"))
            #expect(headers.contains("x-mvault-content-sha256: \(sha256Hex(alice))"))
            let range = s.cli.root.appendingPathComponent("range.bin").path
            r = try await s.cli.curl(auth + ["-r", "1000000-2999999", "-o", range, "-w", "%{http_code}", url])
            #expect(r.stdout == "206")
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: range))) == Array(alice[1_000_000..<3_000_000]))
            r = try await s.cli.curl(
                auth + ["-H", "If-None-Match: \(etag)", "-o", "/dev/null", "-w", "%{http_code}", url])
            #expect(r.stdout == "304")
            // A resume for another copy (If-Range with another ETag) gets the whole file.
            r = try await s.cli.curl(
                auth + [
                    "-r", "5-", "-H", "If-Range: \"\(sha256Hex(original))\"", "-o", range, "-w", "%{http_code}", url,
                ])
            #expect(r.stdout == "200")
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: range))) == alice)
            r = try await s.cli.curl(auth + ["-o", "/dev/null", "-w", "%{http_code}", url + "?unmarked=yes"])
            #expect(r.stdout == "400")

            // A pull interrupted after 3 MB resumes into the same copy.
            let resumed = s.cli.root.appendingPathComponent("resumed")
            try FileManager.default.createDirectory(at: resumed, withIntermediateDirectories: true)
            let tag = etag.dropFirst(4).prefix(16)
            try Data(alice.prefix(3_000_000)).write(
                to: resumed.appendingPathComponent(".model.safetensors.\(tag).mvault-partial"))
            let (resumeRun, resumedCopy) = try await pull("alice", "resumed")
            #expect(resumeRun.stderr.contains("resuming model.safetensors at 3000000"), "\(resumeRun.stderr)")
            #expect(resumeRun.stdout.contains("(fingerprinted, verified)"))
            #expect(resumedCopy == alice)

            // trace, on the vault's host: unseal its key agent, then trace each copy.
            let suspects = s.cli.root.appendingPathComponent("suspects")
            try FileManager.default.createDirectory(at: suspects, withIntermediateDirectories: true)
            for (name, bytes) in [
                ("alice", alice), ("bob", bob), ("token", viaToken), ("partner", partner), ("plain", plain),
            ] {
                try Data(bytes).write(to: suspects.appendingPathComponent("\(name).safetensors"))
            }
            // On the server's host, trace uses the running server's keys: no second unseal.
            r = try await s.cli.run(["trace", suspects.appendingPathComponent("alice.safetensors").path])
            #expect(r.status == 0 && r.stdout.contains("MATCH"), "\(r.stdout)\(r.stderr)")
            for share in s.shares.prefix(3) { _ = try await s.cli.run(["unseal"], stdin: share) }
            func trace(_ name: String, _ extra: [String] = []) async throws -> CLI.Result {
                try await s.cli.run(["trace", suspects.appendingPathComponent("\(name).safetensors").path] + extra)
            }
            r = try await trace("alice", ["--model", "acme/small"])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.contains("MATCH      account alice — acme/small@1: z "), "\(r.stdout)")
            #expect(r.stdout.contains("(informed)"), "\(r.stdout)")
            #expect(!r.stdout.contains("account bob"))
            #expect(r.stdout.contains("tested:     4 recipient code(s) of 1 model(s)"), "\(r.stdout)")
            r = try await trace("bob")
            #expect(r.stdout.contains("MATCH      account bob — acme/small@1"), "\(r.stdout)")
            #expect(r.stdout.split(separator: "\n").filter { $0.hasPrefix("MATCH") }.count == 1)
            r = try await trace("token")
            #expect(r.stdout.contains("MATCH      account bob, token \(tokenID) — acme/small@1"), "\(r.stdout)")
            r = try await trace("partner")
            #expect(r.stdout.contains("MATCH      Partner Corp (outside the vault, handed over by ops)"), "\(r.stdout)")
            r = try await trace("alice", ["--blind"])
            #expect(r.stdout.contains("MATCH      account alice — acme/small@1: z "), "\(r.stdout)")
            #expect(r.stdout.contains("(blind)") && !r.stdout.contains("(informed)"), "\(r.stdout)")
            #expect(r.stdout.contains("tested:     4 recipient code(s) of 1 model(s)"), "\(r.stdout)")

            // --json: the same finding as one document, with the z the text rounds.
            r = try await trace("alice", ["--json"])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            let report = try #require(
                try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
            let found = try #require((report["matches"] as? [[String: Any]])?.first, "\(r.stdout)")
            let threshold = try #require(report["threshold"] as? Double)
            #expect(found["account"] as? String == "alice" && found["recipient"] as? String == "user:alice")
            #expect(found["method"] as? String == "informed" && found["version"] as? Int == 1)
            #expect((found["z"] as? Double ?? 0) > 10 * threshold, "\(r.stdout)")
            #expect((report["matches"] as? [Any])?.count == 1 && report["tested"] as? Int == 4)
            #expect((found["downloads"] as? [[String: Any]])?.first?["path"] as? String == "model.safetensors")
            #expect((report["highestOther"] as? [String: Any])?["z"] as? Double ?? .infinity < threshold)

            // Two colluders average their copies: each mark is at half strength, under the blind
            // threshold on a model this small, but the original in the vault names both.
            let averaged = try averageF16(alice, bob, dataStart: Int(file.dataStart))
            try Data(averaged).write(to: suspects.appendingPathComponent("averaged.safetensors"))
            r = try await trace("averaged")
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            let matches = r.stdout.split(separator: "\n").filter { $0.hasPrefix("MATCH") }
            #expect(matches.count == 2, "\(r.stdout)")
            #expect(matches.contains { $0.contains("account alice —") && $0.contains("(informed)") }, "\(r.stdout)")
            #expect(matches.contains { $0.contains("account bob —") && $0.contains("(informed)") }, "\(r.stdout)")
            r = try await trace("averaged", ["--blind", "--realign"])
            #expect(r.status == 1 && r.stderr.contains("--realign needs the informed test"), "\(r.stderr)")

            r = try await trace("plain")
            #expect(r.status == 3, "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.contains("no recipient code matched"))
            #expect(r.stdout.contains("owner mark of acme/small: absent"))
            r = try await trace("plain", ["--json"])
            #expect(r.status == 3, "\(r.stdout)\(r.stderr)")
            let unmatched = try #require(
                try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
            #expect((unmatched["matches"] as? [Any])?.isEmpty == true)
            let owner = try #require((unmatched["ownerMarks"] as? [[String: Any]])?.first, "\(r.stdout)")
            #expect(owner["model"] as? String == "acme/small" && owner["present"] as? Bool == false)
            #expect((owner["z"] as? Double ?? .infinity) < (owner["threshold"] as? Double ?? 0))

            // Bad input: not a model, a model with nothing on record.
            r = try await s.cli.run(["trace", input.appendingPathComponent("config.json").path])
            #expect(r.status == 1 && r.stderr.contains("neither a safetensors file"), "\(r.stderr)")
            r = try await trace("alice", ["--model", "acme/other"])
            #expect(r.status == 1 && r.stderr.contains("no model named acme/other"), "\(r.stderr)")
            #expect(
                try await s.mvault(["push", input.appendingPathComponent("config.json").path, "--model", "acme/other"])
                    .status == 0)
            r = try await trace("alice", ["--model", "acme/other"])
            #expect(r.status == 3, "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.contains("no fingerprinted download of acme/other is on record"))
            #expect(r.stdout.contains("owner mark of acme/other: absent"))
        }
    }
}

/// The element-wise mean of two F16 safetensors files with the same header (tensor data from
/// `dataStart` on), as colluders would average their copies.
func averageF16(_ a: [UInt8], _ b: [UInt8], dataStart: Int) throws -> [UInt8] {
    var out = a
    for i in stride(from: dataStart, to: a.count, by: 2) {
        let x = Float(Float16(bitPattern: UInt16(a[i]) | UInt16(a[i + 1]) << 8))
        let y = Float(Float16(bitPattern: UInt16(b[i]) | UInt16(b[i + 1]) << 8))
        let bits = Float16((x + y) / 2).bitPattern
        out[i] = UInt8(bits & 0xFF)
        out[i + 1] = UInt8(bits >> 8)
    }
    return out
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    var hasher = Crypto.SHA256()
    hasher.update(data: bytes)
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}
