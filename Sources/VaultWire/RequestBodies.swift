import Foundation
import VaultCore

/// The body of `POST /v1/tokens`.
public struct NewToken: Codable, Sendable {
    /// The slowest and fastest per-token request rates a token may be given.
    public static let requestsPerSecondRange: ClosedRange<Double> = 0.01...100_000
    public static let defaultLifetime = 30 * 86_400

    public var name: String
    public var scopes: [TokenScope]
    /// Lifetime in seconds (default 30 days).
    public var expiresIn: Int?
    public var allowedNetworks: [IPNetwork]?
    public var requestsPerSecond: Double?

    public init(
        name: String, scopes: [TokenScope], expiresIn: Int? = nil, allowedNetworks: [IPNetwork]? = nil,
        requestsPerSecond: Double? = nil
    ) {
        self.name = name
        self.scopes = scopes
        self.expiresIn = expiresIn
        self.allowedNetworks = allowedNetworks
        self.requestsPerSecond = requestsPerSecond
    }

    /// Checks every field; returns the lifetime in seconds.
    public func validate(maxLifetime: Int) throws(RequestError) -> Int {
        guard !name.isEmpty, name.count <= 100 else {
            throw RequestError("a token needs a name of 1 to 100 characters", hint: "e.g. \"ci-deploy\"")
        }
        guard !scopes.isEmpty, scopes.count <= 100, scopes.allSatisfy({ !$0.capabilities.isEmpty }) else {
            throw RequestError(
                "a token needs 1 to 100 scopes, each with at least one capability",
                hint: #"e.g. "scopes": [{"pattern": "acme/*", "capabilities": ["pull"]}]"#)
        }
        guard (allowedNetworks?.count ?? 0) <= 100 else { throw RequestError("a token takes at most 100 networks") }
        let lifetime = expiresIn ?? Self.defaultLifetime
        guard lifetime >= 1, lifetime <= maxLifetime else {
            throw RequestError("expiresIn must be 1 to \(maxLifetime) seconds")
        }
        if let rate = requestsPerSecond, !Self.requestsPerSecondRange.contains(rate) {
            let range = Self.requestsPerSecondRange
            throw RequestError(
                "requestsPerSecond must be from \(range.lowerBound) to \(Int(range.upperBound))",
                hint: "leave it out for no per-token limit")
        }
        return lifetime
    }
}

/// The body of `POST /v1/grants`: exactly one of `user` and `role`.
public struct NewGrant: Codable, Sendable {
    /// The furthest expiry a grant may be given.
    public static let maxLifetime: TimeInterval = 100 * 365 * 86_400

    public var user: String?
    public var role: String?
    public var pattern: ModelPattern
    public var capabilities: [Capability]
    public var effect: GrantRecord.Effect?
    /// Absolute expiry, or…
    public var expiresAt: Date?
    /// …seconds from now.
    public var expiresIn: Int?

    public init(
        user: String? = nil, role: String? = nil, pattern: ModelPattern, capabilities: [Capability],
        effect: GrantRecord.Effect? = nil, expiresAt: Date? = nil, expiresIn: Int? = nil
    ) {
        self.user = user
        self.role = role
        self.pattern = pattern
        self.capabilities = capabilities
        self.effect = effect
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
    }

    /// Checks every field; returns whom the grant is for and when it ends (nil: never).
    public func validate(now: Date) throws(RequestError) -> (subject: GrantSubject, expiresAt: Date?) {
        let subject: GrantSubject
        switch (user, role) {
        case (let user?, nil): subject = .user(user)
        case (nil, let role?): subject = .role(role)
        default: throw RequestError("give exactly one of \"user\" or \"role\"")
        }
        guard !capabilities.isEmpty else { throw RequestError("a grant needs at least one capability") }
        var expires = expiresAt
        if let seconds = expiresIn {
            guard expires == nil, seconds > 0, TimeInterval(seconds) <= Self.maxLifetime else {
                throw RequestError(
                    "expiresIn must be 1 to \(Int(Self.maxLifetime)) seconds, and not given with expiresAt")
            }
            expires = now.addingTimeInterval(TimeInterval(seconds))
        }
        if let expires {
            guard expires > now else { throw RequestError("the expiry is in the past") }
            guard expires.timeIntervalSince(now) <= Self.maxLifetime else {
                throw RequestError("the expiry is more than 100 years away", hint: "leave it out for no expiry")
            }
        }
        return (subject, expires)
    }
}

/// The body of `POST /v1/models/NS/NAME/uploads/ID/commit`.
public struct CommitRequest: Codable, Sendable {
    public static let maxNoteLength = 4096
    public var note: String?

    public init(note: String? = nil) { self.note = note }

    public func validate() throws(RequestError) {
        if let note, note.utf8.count > Self.maxNoteLength {
            throw RequestError("the note is over \(Self.maxNoteLength) bytes")
        }
    }
}

/// How the server reads JSON request bodies (and the fuzz targets read them the same way).
public enum WireJSON {
    public static func decoder() -> JSONDecoder { JSONDecoder() }
}

/// The body of `POST /v1/auth/login`. Each field is bounded before any work (Argon2id, the
/// lockout counters, the audit entry): no account has a longer name, and no code is longer.
public struct LoginRequest: Codable, Sendable {
    public static let maxUsernameBytes = 64
    public static let maxPasswordBytes = 1024
    public static let maxCodeBytes = 64

    public var username: String
    public var password: String
    public var totp: String?
    /// A recovery code, in place of `totp`, when the authenticator is lost.
    public var recoveryCode: String?

    public init(username: String, password: String, totp: String? = nil, recoveryCode: String? = nil) {
        self.username = username
        self.password = password
        self.totp = totp
        self.recoveryCode = recoveryCode
    }

    public func validate() throws(RequestError) {
        guard username.utf8.count <= Self.maxUsernameBytes else {
            throw RequestError("a user name is at most \(Self.maxUsernameBytes) bytes")
        }
        guard password.utf8.count <= Self.maxPasswordBytes else {
            throw RequestError("a password is at most \(Self.maxPasswordBytes) bytes")
        }
        guard (totp?.utf8.count ?? 0) <= Self.maxCodeBytes, (recoveryCode?.utf8.count ?? 0) <= Self.maxCodeBytes else {
            throw RequestError("a TOTP or recovery code is at most \(Self.maxCodeBytes) bytes")
        }
    }
}
