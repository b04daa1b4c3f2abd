import AsyncHTTPClient
import Foundation
import NIOSSL
import Testing
import VaultServer

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Server: sys endpoints over TLS", .serialized)
struct SysTests {
    @Test("health is 503 while sealed and 200 once unsealed through the API, share by share")
    func unsealOverAPI() async throws {
        try await ServerFixture.with { f in
            var r = try await f.request(.GET, "/v1/sys/health")
            #expect(r.status == 503)
            #expect(r.json["sealed"] as? Bool == true)
            r = try await f.request(.GET, "/v1/sys/seal-status")
            #expect(r.status == 200)
            #expect(r.json["threshold"] as? Int == 2)
            #expect(r.json["progress"] as? Int == 0)

            r = try await f.request(.POST, "/v1/sys/unseal", body: #"{"share": "\#(f.shares[0])"}"#)
            #expect(r.status == 200)
            #expect(r.json["progress"] as? Int == 1)
            #expect(r.json["sealed"] as? Bool == true)

            r = try await f.request(.POST, "/v1/sys/unseal", body: #"{"share": "\#(f.shares[0])"}"#)
            #expect(r.status == 400)
            #expect((r.json["error"] as? String)?.contains("already given") == true)

            r = try await f.request(.POST, "/v1/sys/unseal", body: #"{"share": "\#(f.shares[2])"}"#)
            #expect(r.status == 200)
            #expect(r.json["sealed"] as? Bool == false)
            r = try await f.request(.GET, "/v1/sys/health")
            #expect(r.status == 200)
            #expect(r.json["status"] as? String == "ok")
        }
    }

    @Test("a second server on the same vault is refused at start, naming the one that runs")
    func oneServerPerVault() async throws {
        try await ServerFixture.with { f in
            let config = ServerConfiguration(vault: f.root.appendingPathComponent("vault").path)
            do {
                _ = try buildApplication(configuration: config)
                Issue.record("a second server was built on a vault that is served")
            } catch {
                #expect(
                    "\(error)".contains(
                        "another mvault server already serves \(f.root.appendingPathComponent("vault").path) (pid \(getpid()), listening on 127.0.0.1:\(f.port))"
                    ), "\(error)")
            }
            // The first one serves on, and its audit log stays whole.
            try await f.unseal()
            #expect(try await f.request(.GET, "/v1/sys/health").status == 200)
        }
    }

    @Test("health is 503 when the audit log cannot record requests, and says why")
    func healthReportsAudit() async throws {
        try await ServerFixture.with(before: { root in
            // A log that fails its checks: the server refuses every audited request once unsealed.
            let audit = root.appendingPathComponent("vault/audit")
            try FileManager.default.createDirectory(at: audit, withIntermediateDirectories: true)
            try Data("{\"not\": \"an entry\"}\n".utf8).write(to: audit.appendingPathComponent("entries.jsonl"))
        }) { f in
            for share in f.shares.prefix(2) {
                _ = try await f.request(.POST, "/v1/sys/unseal", body: #"{"share": "\#(share)"}"#)
            }
            let r = try await f.request(.GET, "/v1/sys/health")
            #expect(r.status == 503)
            #expect(r.json["status"] as? String == "audit-unavailable")
            #expect(
                (r.json["audit"] as? String)?.contains("entry 0 (line 1) is not a well-formed event") == true,
                "\(r.json)")
            #expect(r.json["sealed"] as? Bool == false)
        }
    }

    @Test("bad unseal requests get a 4xx JSON error and change nothing")
    func badRequests() async throws {
        try await ServerFixture.with(limits: .init(maxJSONBodyBytes: 1024, idleTimeoutSeconds: 30)) { f in
            let cases: [(String, Int, String)] = [
                ("{bad json", 400, "malformed JSON body"),
                (#"{"share": 5}"#, 400, "malformed JSON body"),
                ("{}", 400, "give exactly one of"),
                (#"{"share": "mvs1-00", "passphrase": "x"}"#, 400, "give exactly one of"),
                (#"{"share": "not a share"}"#, 400, "not a valid unseal share"),
                (#"{"passphrase": "a long enough passphrase"}"#, 400, "unsealed with Shamir shares"),
                (#"{"share": "\#(String(repeating: "a", count: 2000))"}"#, 413, "request body over 1024 bytes"),
            ]
            for (body, status, message) in cases {
                let r = try await f.request(.POST, "/v1/sys/unseal", body: body)
                #expect(r.status == status, "\(body.prefix(40))")
                #expect((r.json["error"] as? String)?.contains(message) == true, "\(body.prefix(40)): \(r.json)")
                #expect(r.headers["content-type"] == "application/json")
            }
            let r = try await f.request(.GET, "/v1/sys/seal-status")
            #expect(r.json["progress"] as? Int == 0)
            #expect(r.json["sealed"] as? Bool == true)
        }
    }

    @Test("unknown routes get a JSON 404; every response carries HSTS and no-store")
    func notFoundAndHeaders() async throws {
        try await ServerFixture.with { f in
            for path in ["/v1/nope", "/v1/sys/health", "/"] {
                let r = try await f.request(.GET, path)
                #expect(r.headers["strict-transport-security"] == "max-age=31536000", "\(path)")
                #expect(r.headers["cache-control"] == "no-store", "\(path)")
            }
            let r = try await f.request(.GET, "/v1/nope")
            #expect(r.status == 404)
            #expect(r.json["error"] as? String == "no such endpoint: GET /v1/nope")
            // A known path with a method it does not take is an unknown endpoint too.
            let wrongMethod = try await f.request(.DELETE, "/v1/sys/health")
            #expect(wrongMethod.status == 404)
            #expect(wrongMethod.headers["content-type"] == "application/json")
            #expect(wrongMethod.headers["strict-transport-security"] == "max-age=31536000")
            #expect(wrongMethod.json["error"] as? String == "no such endpoint: DELETE /v1/sys/health")
            #expect(wrongMethod.json["hint"] as? String == "see /v1/openapi.json")
        }
    }

    @Test("TLS 1.1 and older are refused; a client that does not trust the vault CA is refused")
    func tlsRefusals() async throws {
        try await ServerFixture.with { f in
            let old = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(
                    tlsConfiguration: try ServerFixture.clientTLS(trusting: f.caPath, maximumVersion: .tlsv11)))
            await #expect(throws: (any Error).self) {
                _ = try await f.request(.GET, "/v1/sys/health", client: old, timeout: 2)
            }
            try await old.shutdown()

            let otherCA = FileManager.default.temporaryDirectory.appendingPathComponent("other-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: otherCA) }
            let pem = try VaultPKITestSupport.otherCAPEM()
            try Data(pem.utf8).write(to: otherCA)
            let stranger = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(tlsConfiguration: try ServerFixture.clientTLS(trusting: otherCA.path)))
            await #expect(throws: (any Error).self) {
                _ = try await f.request(.GET, "/v1/sys/health", client: stranger, timeout: 2)
            }
            try await stranger.shutdown()

            let tls12 = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(
                    tlsConfiguration: try ServerFixture.clientTLS(trusting: f.caPath, maximumVersion: .tlsv12)))
            #expect(try await f.request(.GET, "/v1/sys/seal-status", client: tls12).status == 200)
            try await tls12.shutdown()
        }
    }

    @Test("every route the router has is in the committed OpenAPI document, and nothing else")
    func openAPICoversRoutes() async throws {
        try await ServerFixture.with { f in
            let r = try await f.request(.GET, "/v1/openapi.json")
            #expect(r.status == 200)
            let paths = try #require(r.json["paths"] as? [String: [String: Any]])
            var documented = Set<String>()
            for (path, operations) in paths {
                for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
            }
            var config = ServerConfiguration(vault: f.root.appendingPathComponent("vault").path)
            config.listen.port = 0
            // A route's trailing catch-all `**` is the document's `{path}` parameter.
            let routed = Set(
                try apiRoutes(configuration: config).map {
                    "\($0.method.rawValue) \($0.path.replacingOccurrences(of: "/**", with: "/{path}"))"
                })
            #expect(routed == documented)
        }
    }
}
