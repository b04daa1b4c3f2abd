import Foundation
import Hummingbird
import NIOSSL
import VaultCore
import VaultPKI

extension VaultAPI {
    /// Checks the client certificate of a mutual-TLS connection before anything else: only
    /// certificates this vault issued and has not revoked are let through, and the request then
    /// authenticates as the certificate's user when it carries no token. Nil without one.
    func clientCertificate(of context: VaultRequestContext) async throws -> CertificateRecord? {
        guard let peer = try? await context.channel.nioSSL_peerCertificate().get() else { return nil }
        let serial = LocalCertificateAuthority.serialText(peer.serialNumber)
        let record = try await cachedOrBlocking { [self] in try identities.certificate(serial: serial) }
        guard let record else {
            throw APIError(
                .unauthorized, "client certificate \(serial) was not issued by this vault",
                hint: "ask an administrator for one: mvault cert issue USER")
        }
        if let revoked = record.revokedAt {
            throw APIError(
                .unauthorized, "client certificate \(serial) was revoked at \(iso8601(revoked))",
                hint: "ask an administrator for a new one: mvault cert issue \(record.user)")
        }
        return record
    }
}

extension VaultAPI {
    struct CertificateList: Encodable {
        var certificates: [CertificateRecord]
    }

    var listCertificates: AuthorizedHandler {
        { _, _, _ in
            try await blocking { [self] in try json(CertificateList(certificates: try identities.certificates())) }
        }
    }

    struct NewCertificate: Decodable {
        var user: String
        /// Validity in days (default 90).
        var days: Int?
    }

    struct IssuedView: Encodable {
        var serial: String
        var user: String
        var expiresAt: Date
        var certificate: String
        /// The private key, in this response only.
        var privateKey: String
    }

    /// Issues a client certificate that authenticates as `user` over mutual TLS.
    var issueCertificate: AuthorizedHandler {
        { [self] request, _, caller in
            let body = try await decode(NewCertificate.self, from: request)
            let days = body.days ?? 90
            guard (1...825).contains(days) else { throw APIError(.badRequest, "days must be 1 to 825") }
            return try await blocking { [self] in
                guard try identities.user(named: body.user) != nil else { throw VaultError.unknownUser(body.user) }
                let issued = try keys.certificateAuthority(certificate: layout.caCertificate)
                    .issueClientCertificate(commonName: body.user, days: days)
                try identities.createCertificate(
                    CertificateRecord(
                        serial: issued.serial, user: body.user, issuedAt: Date(), expiresAt: issued.notAfter,
                        issuedBy: caller.name))
                return try json(
                    IssuedView(
                        serial: issued.serial, user: body.user, expiresAt: issued.notAfter,
                        certificate: issued.certificatePEM, privateKey: issued.keyPEM), status: .created)
            }
        }
    }

    var revokeCertificate: AuthorizedHandler {
        { [self] _, context, _ in
            let serial = try parameter("serial", context)
            try await blocking { [self] in try identities.revokeCertificate(serial: serial, at: Date()) }
            return Response(status: .noContent)
        }
    }
}
