import Foundation

/// The names a vault's server certificate is issued for, split into DNS names and IP addresses.
public struct TLSNames: Sendable, Equatable {
    public var dns: [String]
    public var ip: [String]

    /// localhost, this machine's host name, 127.0.0.1 and ::1.
    public static var defaults: [String] {
        var names = ["localhost", "127.0.0.1", "::1"]
        let host = ProcessInfo.processInfo.hostName
        if !host.isEmpty, host != "localhost" { names.insert(host, at: 1) }
        return names
    }

    public init(_ names: [String]) {
        let addresses = names.filter { $0.contains(":") || $0.allSatisfy { $0.isNumber || $0 == "." } }
        ip = addresses
        dns = names.filter { !addresses.contains($0) }
    }
}
