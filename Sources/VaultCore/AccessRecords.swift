import Foundation

/// A named set of capabilities. A user who holds a role has its capabilities on every model,
/// unless a deny grant says otherwise. Built-in roles cannot be changed except for their MFA
/// and network requirements.
public struct RoleRecord: Codable, Hashable, Sendable {
    public var name: String
    public var capabilities: Set<Capability>
    /// Holders must have TOTP enrolled; until they do, the role gives them nothing.
    public var requireMFA: Bool
    /// When not empty, the role gives its capabilities only to requests from these networks.
    public var allowedNetworks: [IPNetwork]
    public var builtIn: Bool
    public var createdAt: Date

    public init(
        name: String, capabilities: Set<Capability>, requireMFA: Bool = false, allowedNetworks: [IPNetwork] = [],
        builtIn: Bool = false, createdAt: Date
    ) {
        self.name = name
        self.capabilities = capabilities
        self.requireMFA = requireMFA
        self.allowedNetworks = allowedNetworks
        self.builtIn = builtIn
        self.createdAt = createdAt
    }

    /// admin — everything; publisher — list, read, pull, push; consumer — list, read, pull;
    /// auditor — list, read, audit.
    public static let builtInCapabilities: [String: Set<Capability>] = [
        "admin": Set(Capability.allCases),
        "publisher": [.list, .read, .pull, .push],
        "consumer": [.list, .read, .pull],
        "auditor": [.list, .read, .audit],
    ]

    public static func builtIns(createdAt: Date) -> [RoleRecord] {
        builtInCapabilities.keys.sorted().map {
            RoleRecord(name: $0, capabilities: builtInCapabilities[$0]!, builtIn: true, createdAt: createdAt)
        }
    }

    /// Role names follow user-name rules: 1–64 of lowercase letters, digits, `.`, `_`, `-`.
    public static func validate(name: String) throws(VaultError) {
        do {
            try UserName.validate(name)
        } catch {
            throw .invalidArgument(
                "invalid role name '\(name)': use 1 to 64 lowercase letters, digits, '.', '_', '-' or '@'")
        }
    }
}

/// Who a grant is for.
public enum GrantSubject: Hashable, Sendable, CustomStringConvertible {
    case user(String)
    case role(String)

    public var description: String {
        switch self {
        case .user(let name): "user \(name)"
        case .role(let name): "role \(name)"
        }
    }

    public var kind: String {
        switch self {
        case .user: "user"
        case .role: "role"
        }
    }

    public var name: String {
        switch self {
        case .user(let name), .role(let name): name
        }
    }
}

/// Capabilities on the models matching a pattern, given to (or, for a deny, taken from) a user
/// or every holder of a role. An explicit deny beats every allow.
public struct GrantRecord: Hashable, Sendable {
    public enum Effect: String, Codable, Sendable {
        case allow, deny
    }

    public var id: String
    public var subject: GrantSubject
    public var pattern: ModelPattern
    public var capabilities: Set<Capability>
    public var effect: Effect
    public var expiresAt: Date?
    public var createdAt: Date
    public var createdBy: String
    /// The last time this grant decided a request (allowed it, or for a deny, refused it).
    public var lastUsedAt: Date?

    public init(
        id: String, subject: GrantSubject, pattern: ModelPattern, capabilities: Set<Capability>, effect: Effect,
        expiresAt: Date?, createdAt: Date, createdBy: String, lastUsedAt: Date? = nil
    ) {
        self.id = id
        self.subject = subject
        self.pattern = pattern
        self.capabilities = capabilities
        self.effect = effect
        self.expiresAt = expiresAt
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.lastUsedAt = lastUsedAt
    }

    public func isActive(at now: Date) -> Bool { expiresAt.map { $0 > now } ?? true }
}

/// One scope of an API token: capabilities on the models matching a pattern.
public struct TokenScope: Codable, Hashable, Sendable {
    public var pattern: ModelPattern
    public var capabilities: Set<Capability>

    public init(pattern: ModelPattern, capabilities: Set<Capability>) {
        self.pattern = pattern
        self.capabilities = capabilities
    }

    enum CodingKeys: String, CodingKey {
        case pattern, capabilities
    }

    /// Capabilities are written in their canonical order (list, read, pull, …).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pattern, forKey: .pattern)
        try container.encode(capabilities.sorted(), forKey: .capabilities)
    }
}

/// A machine credential. It acts for its owner, narrowed to its scopes; only a keyed hash of its
/// secret is stored.
public struct TokenRecord: Hashable, Sendable {
    public var id: String
    public var name: String
    public var owner: String
    public var secretHash: String
    public var scopes: [TokenScope]
    public var expiresAt: Date
    public var createdAt: Date
    public var revokedAt: Date?
    public var lastUsedAt: Date?
    /// When not empty, the token is refused from any other network.
    public var allowedNetworks: [IPNetwork]
    /// Requests per second this token may make (nil: only the per-address limit applies).
    public var requestsPerSecond: Double?

    public init(
        id: String, name: String, owner: String, secretHash: String, scopes: [TokenScope], expiresAt: Date,
        createdAt: Date, revokedAt: Date? = nil, lastUsedAt: Date? = nil, allowedNetworks: [IPNetwork] = [],
        requestsPerSecond: Double? = nil
    ) {
        self.id = id
        self.name = name
        self.owner = owner
        self.secretHash = secretHash
        self.scopes = scopes
        self.expiresAt = expiresAt
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
        self.allowedNetworks = allowedNetworks
        self.requestsPerSecond = requestsPerSecond
    }
}

/// A client certificate issued by the vault's CA. It authenticates as `user` until it expires
/// or is revoked.
public struct CertificateRecord: Hashable, Sendable, Codable {
    /// Lowercase hex, without leading zero bytes.
    public var serial: String
    public var user: String
    public var issuedAt: Date
    public var expiresAt: Date
    public var issuedBy: String
    public var revokedAt: Date?

    public init(serial: String, user: String, issuedAt: Date, expiresAt: Date, issuedBy: String, revokedAt: Date? = nil)
    {
        self.serial = serial
        self.user = user
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.issuedBy = issuedBy
        self.revokedAt = revokedAt
    }
}

/// A model name pattern: a model name in which `*` stands for any run of characters
/// (`acme/*`, `acme/llama-*`, `*`).
public struct ModelPattern: Hashable, Sendable, Codable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) throws(VaultError) {
        let allowed = text.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
                || $0 == 0x2F || $0 == 0x2A
        }
        guard !text.isEmpty, text.utf8.count <= 200, allowed else {
            throw .invalidArgument(
                "invalid model pattern '\(text)': use a model name in which * stands for any characters, e.g. acme/*")
        }
        self.text = text
    }

    public init(from decoder: any Decoder) throws {
        self = try ModelPattern(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    public var description: String { text }

    /// Whether `name` matches, `*` matching any run of characters (including `/`).
    public func matches(_ name: String) -> Bool {
        Self.glob(Array(text.utf8)[...], Array(name.utf8)[...])
    }

    /// Whether every name `other` matches, this matches too. Sure when true: `other`'s text is
    /// matched with its `*`s taken as plain characters, which only this pattern's `*`s can absorb
    /// (so whatever a `*` of `other` stands for, the same run absorbs it). May say false for a
    /// few covering pairs (`*a*` and `a*b`, say); callers refuse then, which is the safe side.
    public func covers(_ other: ModelPattern) -> Bool {
        Self.glob(Array(text.utf8)[...], Array(other.text.utf8)[...])
    }

    /// Whether some name matches both patterns.
    public func overlaps(_ other: ModelPattern) -> Bool {
        let (a, b) = (Array(text.utf8), Array(other.text.utf8))
        // reachable[i][j]: some string takes `a[..<i]` and `b[..<j]` to the same place.
        var reachable = Array(repeating: Array(repeating: false, count: b.count + 1), count: a.count + 1)
        reachable[0][0] = true
        for i in 0...a.count {
            for j in 0...b.count where reachable[i][j] {
                let (x, y) = (i < a.count ? a[i] : nil, j < b.count ? b[j] : nil)
                // A `*` may stand for nothing, or swallow what the other pattern spells next.
                if x == 0x2A {
                    reachable[i + 1][j] = true
                    if y != nil { reachable[i][j + 1] = true }
                }
                if y == 0x2A {
                    reachable[i][j + 1] = true
                    if x != nil { reachable[i + 1][j] = true }
                }
                if let x, let y, x != 0x2A, y != 0x2A, x == y { reachable[i + 1][j + 1] = true }
            }
        }
        return reachable[a.count][b.count]
    }

    static func glob(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
        var p = p
        var s = s
        var star: (ArraySlice<UInt8>, ArraySlice<UInt8>)?
        while true {
            if let c = p.first, c == 0x2A {
                p = p.dropFirst()
                star = (p, s)
            } else if let c = p.first, let d = s.first, c == d {
                p = p.dropFirst()
                s = s.dropFirst()
            } else if s.isEmpty && p.isEmpty {
                return true
            } else if let (rest, from) = star, !from.isEmpty {
                p = rest
                s = from.dropFirst()
                star = (rest, s)
            } else {
                return false
            }
        }
    }
}

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
public struct IPNetwork: Hashable, Sendable, Codable, CustomStringConvertible {
    public let address: [UInt8]
    public let prefixLength: Int

    public init(_ text: String) throws(VaultError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = Self.parseAddress(String(parts[0])) else {
            throw .invalidArgument("invalid network '\(text)': expected CIDR notation such as 10.0.0.0/8")
        }
        let bits = address.count * 8
        let length = parts.count == 2 ? Int(parts[1]) : bits
        guard let length, (0...bits).contains(length) else {
            throw .invalidArgument("invalid network '\(text)': the prefix length must be 0 to \(bits)")
        }
        self.address = address
        self.prefixLength = length
    }

    public init(from decoder: any Decoder) throws {
        self = try IPNetwork(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        let host: String
        if address.count == 4 {
            host = address.map(String.init).joined(separator: ".")
        } else {
            host = stride(from: 0, to: 16, by: 2).map {
                String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16)
            }
            .joined(separator: ":")
        }
        return "\(host)/\(prefixLength)"
    }

    /// Whether `ip` (an address as text) lies in this network. IPv4-mapped IPv6 addresses count
    /// as IPv4.
    public func contains(_ ip: String) -> Bool {
        guard var other = Self.parseAddress(ip) else { return false }
        if other.count == 16, address.count == 4, other[0..<12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF][...] {
            other = Array(other[12...])
        }
        guard other.count == address.count else { return false }
        var remaining = prefixLength
        for i in 0..<address.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address[i] & mask != other[i] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// The network `ip` is taken to be "from" when telling networks apart: its /24 for IPv4
    /// (IPv4-mapped IPv6 included), its /64 for IPv6; nil when `ip` is not an address.
    public static func enclosing(_ ip: String) -> IPNetwork? {
        guard var address = parseAddress(ip) else { return nil }
        if address.count == 16, address[0..<12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF][...] {
            address = Array(address[12...])
        }
        let kept = address.count == 4 ? 3 : 8
        for i in kept..<address.count { address[i] = 0 }
        return IPNetwork(address: address, prefixLength: kept * 8)
    }

    init(address: [UInt8], prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    static func parseAddress(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// What recording the network a token was used from found.
public enum NetworkSighting: Sendable, Equatable {
    /// The token was used from this network before.
    case known
    /// The token's first use from any network.
    case first
    /// A network the token was never used from, though it was used from others.
    case new
}
