import VaultPKI

enum VaultPKITestSupport {
    /// The certificate of a CA the server has never heard of.
    static func otherCAPEM() throws -> String {
        try LocalCertificateAuthority.create(name: "Some other CA").certificatePEM
    }
}
