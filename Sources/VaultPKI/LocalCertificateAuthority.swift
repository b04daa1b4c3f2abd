import Crypto
import Foundation
import SwiftASN1
import X509

/// The vault's own certificate authority, for operators who bring no certificate.
///
/// `mvault init` creates it with a server certificate for the names the server will be reached
/// by; clients trust the CA certificate (`tls/ca.crt`). Keys are ECDSA P-256.
public struct LocalCertificateAuthority: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// A new CA valid for ten years.
    public static func create(name: String, now: Date = Date()) throws -> LocalCertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("ModelVault")
            CommonName(name)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        return LocalCertificateAuthority(certificate: certificate, key: key)
    }

    /// Loads a CA from its certificate and private key in PEM.
    public init(certificatePEM: String, keyPEM: String) throws {
        certificate = try Certificate(pemEncoded: certificatePEM)
        key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
    }

    init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    public var certificatePEM: String { get throws { try certificate.serializeAsPEM().pemString } }
    public var keyPEM: String { key.pemRepresentation }

    /// A TLS server certificate for `dnsNames` and `ipAddresses`, valid for a year.
    /// - Returns: the certificate and its private key, both PEM.
    public func issueServerCertificate(dnsNames: [String], ipAddresses: [String], now: Date = Date()) throws -> (
        certificatePEM: String, keyPEM: String
    ) {
        let serverKey = P256.Signing.PrivateKey()
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        for ip in ipAddresses {
            guard let bytes = Self.ipBytes(ip) else { throw PKIError.invalidAddress(ip) }
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        let subject = try DistinguishedName {
            OrganizationName("ModelVault")
            CommonName(dnsNames.first ?? ipAddresses.first ?? "mvault")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(365 * 86400),
            issuer: self.certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
                AuthorityKeyIdentifier(
                    keyIdentifier: try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(key))
        return (try certificate.serializeAsPEM().pemString, serverKey.pemRepresentation)
    }

    /// A TLS client certificate for a machine, named `commonName`, valid for `days`.
    public func issueClientCertificate(commonName: String, days: Int, now: Date = Date()) throws
        -> IssuedCertificate
    {
        let clientKey = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("ModelVault")
            CommonName(commonName)
        }
        let notAfter = now.addingTimeInterval(TimeInterval(days) * 86400)
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(clientKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: notAfter,
            issuer: self.certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                AuthorityKeyIdentifier(
                    keyIdentifier: try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(key))
        return IssuedCertificate(
            serial: Self.serialText(Array(certificate.serialNumber.bytes)),
            certificatePEM: try certificate.serializeAsPEM().pemString, keyPEM: clientKey.pemRepresentation,
            notAfter: notAfter)
    }

    /// A serial number as lowercase hex without leading zero bytes (how NIOSSL reports a peer's).
    public static func serialText(_ bytes: [UInt8]) -> String {
        bytes.drop(while: { $0 == 0 }).map { String(format: "%02x", $0) }.joined()
    }

    static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// A client certificate and its private key, both PEM.
public struct IssuedCertificate: Sendable {
    public var serial: String
    public var certificatePEM: String
    public var keyPEM: String
    public var notAfter: Date
}

public enum PKIError: Error, CustomStringConvertible, Equatable {
    case invalidAddress(String)
    public var description: String {
        switch self {
        case .invalidAddress(let text): "'\(text)' is not an IPv4 or IPv6 address"
        }
    }
}
