import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing
import VaultPKI

@Suite("Server: mutual TLS with vault-issued client certificates", .serialized)
struct MutualTLSTests {
    func issue(_ f: ServerFixture, for user: String, admin: String) async throws -> (
        serial: String, cert: String, key: String
    ) {
        let r = try await f.send(.POST, "/v1/certificates", ["user": user, "days": 30], token: admin)
        #expect(r.status == 201, "\(r.json)")
        return (
            try #require(r.json["serial"] as? String), try #require(r.json["certificate"] as? String),
            try #require(r.json["privateKey"] as? String)
        )
    }

    @Test("a vault-issued certificate authenticates its machine; a foreign CA is refused; revocation is immediate")
    func optional() async throws {
        try await ServerFixture.with(clientCertificates: .optional) { f in
            try await f.unseal()
            let admin = try await f.login("admin")
            _ = try await f.send(
                .POST, "/v1/users", ["name": "robot", "password": f.adminPassword, "roles": ["consumer"]], token: admin)
            let (serial, cert, key) = try await issue(f, for: "robot", admin: admin)
            #expect(cert.contains("BEGIN CERTIFICATE") && key.contains("PRIVATE KEY"))

            let robot = try f.certificateClient(certificatePEM: cert, keyPEM: key)
            defer { _ = robot.shutdown() }
            var r = try await f.request(.GET, "/v1/auth/whoami", client: robot)
            #expect(r.status == 200)
            #expect(r.json["user"] as? String == "robot")
            #expect(try await f.request(.GET, "/v1/users", client: robot).status == 403, "robot is only a consumer")
            // Tokens still work alongside; a certificate cannot mint tokens.
            #expect(try await f.request(.GET, "/v1/auth/whoami", token: admin).json["user"] as? String == "admin")
            r = try await f.send(
                .POST, "/v1/tokens", ["name": "x", "scopes": [["pattern": "*", "capabilities": ["read"]]]], token: nil)
            #expect(r.status == 401)

            // A certificate from another CA fails the handshake.
            let stranger = try LocalCertificateAuthority.create(name: "Not the vault")
                .issueClientCertificate(commonName: "robot", days: 30)
            let foreign = try f.certificateClient(certificatePEM: stranger.certificatePEM, keyPEM: stranger.keyPEM)
            defer { _ = foreign.shutdown() }
            await #expect(throws: (any Error).self) {
                _ = try await f.request(.GET, "/v1/auth/whoami", client: foreign, timeout: 5)
            }

            // Listed, then revoked: refused on every route at once, with the reason.
            r = try await f.request(.GET, "/v1/certificates", token: admin)
            #expect((r.json["certificates"] as? [[String: Any]])?.first?["serial"] as? String == serial)
            #expect(try await f.request(.DELETE, "/v1/certificates/\(serial)", token: admin).status == 204)
            for path in ["/v1/auth/whoami", "/v1/sys/health"] {
                r = try await f.request(.GET, path, client: robot)
                #expect(r.status == 401, "\(path)")
                #expect((r.json["error"] as? String)?.hasPrefix("client certificate \(serial) was revoked at") == true)
            }

            // Bad requests issue nothing.
            #expect(try await f.send(.POST, "/v1/certificates", ["user": "ghost"], token: admin).status == 404)
            #expect(
                try await f.send(.POST, "/v1/certificates", ["user": "robot", "days": 0], token: admin).status == 400)
            #expect(try await f.request(.DELETE, "/v1/certificates/abcd", token: admin).status == 404)
            r = try await f.request(.GET, "/v1/certificates", token: admin)
            #expect((r.json["certificates"] as? [Any])?.count == 1)
        }
    }

    @Test("with client certificates required, a connection without one is refused")
    func required() async throws {
        try await ServerFixture.with(clientCertificates: .required) { f in
            await #expect(throws: (any Error).self) {
                _ = try await f.request(.GET, "/v1/sys/health", timeout: 5)
            }
        }
    }
}
