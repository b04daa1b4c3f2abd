import Foundation
import Hummingbird
import Identity
import Storage
import Synchronization
import VaultCore
import VaultWire

/// Bearer tokens: `mvsess_<id>_<secret>` for a login session, `mvtok_<id>_<secret>` for an API
/// token. The id is public (listed, logged); only a keyed hash of the secret is stored.
struct BearerToken {
    static let sessionPrefix = "mvsess"
    static let apiPrefix = "mvtok"
    var prefix = Self.sessionPrefix
    var id: String
    var secret: String

    var text: String { "\(prefix)_\(id)_\(secret)" }
    var isAPIToken: Bool { prefix == Self.apiPrefix }

    init(prefix: String = Self.sessionPrefix, id: String, secret: String) {
        self.prefix = prefix
        self.id = id
        self.secret = secret
    }

    /// `PREFIX_ID_SECRET`; nil for anything else. (Split on the UTF-8 bytes: every request
    /// parses one.)
    init?(text: Substring) {
        let utf8 = text.utf8
        let underscore = UInt8(ascii: "_")
        guard let first = utf8.firstIndex(of: underscore),
            let second = utf8[utf8.index(after: first)...].firstIndex(of: underscore),
            utf8[utf8.index(after: second)...].firstIndex(of: underscore) == nil
        else { return nil }
        let prefix = text[..<first]
        guard prefix == Self.sessionPrefix || prefix == Self.apiPrefix else { return nil }
        self.prefix = String(prefix)
        id = String(text[text.index(after: first)..<second])
        secret = String(text[text.index(after: second)...])
        guard !id.isEmpty, !secret.isEmpty else { return nil }
    }
}

func iso8601(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

extension VaultAPI {
    struct LoginResponse: Encodable {
        var token: String
        var user: String
        var roles: [String]
        var expiresAt: Date
    }

    static let invalidLogin = "invalid user name, password or TOTP code"
    static let totpRequired = "a TOTP code is required"

    /// Password (and TOTP code when enrolled) → a short-lived session token.
    var login: Handler {
        { [self] request, context in
            let body = try await decode(LoginRequest.self, from: request)
            context.audit?.fields.withLock { $0.actor.user = body.username }
            try body.validate()
            return try await blocking { [self] in try login(body, from: context.remoteIP) }
        }
    }

    /// A lockout starting is a brute-force alert.
    func bruteForce(_ locked: [String], user: String, ip: String) {
        for key in locked {
            audit.alert(
                "brute-force", "repeated failed logins locked out \(key)", actor: .init(user: user), sourceIP: ip,
                target: .init(name: key))
        }
    }

    /// Password (and TOTP code when enrolled) → a session token. Blocks (Argon2id, SQLite).
    func login(_ body: LoginRequest, from remoteIP: String) throws -> Response {
        if let wait = throttle.retryAfter(account: body.username, ip: remoteIP) {
            throw APIError(
                .tooManyRequests, "too many failed logins; try again in \(wait) seconds", retryAfter: wait)
        }
        let hasher = try hasher("session")
        let user = try identities.user(named: body.username)
        // Unknown users cost the same Argon2id work as known ones.
        let passwordOK = passwordHashing.verify(
            body.password, against: user?.passwordHash ?? dummyPasswordHash.value)
        if let user, passwordOK, user.sealedTOTPSecret != nil, (body.totp ?? "").isEmpty, body.recoveryCode == nil {
            // The password was right; say so only to ask for the second factor. Not a failure: a
            // client that asks for the code only when told to would otherwise lock its own user
            // out, and every wrong password still counts, so guessing stays as slow.
            throw APIError(
                .unauthorized, Self.totpRequired, hint: "send \"totp\" with the current code from your authenticator")
        }
        guard let user, passwordOK,
            try checkTOTP(body.totp, for: user) || checkRecoveryCode(body.recoveryCode, for: user)
        else {
            bruteForce(throttle.recordFailure(account: body.username, ip: remoteIP), user: body.username, ip: remoteIP)
            throw APIError(.unauthorized, Self.invalidLogin)
        }
        throttle.recordSuccess(account: user.name)
        if passwordHashing.needsRehash(user.passwordHash) {
            try identities.setPasswordHash(user: user.name, hash: passwordHashing.hash(body.password))
        }
        let now = Date()
        let token = BearerToken(id: Hex.encode(SecretGenerator.bytes(8)), secret: SecretGenerator.token())
        let expires = now.addingTimeInterval(TimeInterval(sessionTTLSeconds))
        try identities.createSession(
            SessionRecord(
                id: token.id, secretHash: hasher.hash(token.secret), user: user.name, createdAt: now,
                expiresAt: expires))
        return try json(LoginResponse(token: token.text, user: user.name, roles: user.roles, expiresAt: expires))
    }

    /// True when the user has no TOTP enrolled, or `code` is valid and not yet used.
    func checkTOTP(_ code: String?, for user: UserRecord) throws -> Bool {
        guard let sealed = user.sealedTOTPSecret else { return true }
        guard let code, !code.isEmpty, let secret = try? openTOTPSecret(sealed) else { return false }
        guard let step = TOTP(secret: secret).validate(code, at: Date(), lastUsedStep: user.totpLastStep) else {
            return false
        }
        return try identities.consumeTOTPStep(user: user.name, step: step)
    }

    struct WhoAmI: Encodable {
        var user: String
        var roles: [String]
        /// Whether the user has a TOTP authenticator enrolled.
        var mfaEnrolled: Bool
    }

    var whoami: AuthenticatedHandler {
        { _, _, caller in try json(WhoAmI(user: caller.name, roles: caller.roles, mfaEnrolled: caller.mfaEnrolled)) }
    }

    var logout: AuthenticatedHandler {
        { [self] _, _, caller in
            if let id = caller.sessionID { try await blocking { [self] in try identities.deleteSession(id: id) } }
            return Response(status: .noContent)
        }
    }

    /// Resolves `Authorization: Bearer mvsess_…` (a session) or `mvtok_…` (an API token) to the
    /// caller, or nil when there is no Authorization header.
    /// - Throws: `APIError(.unauthorized)` for a token that is malformed, unknown, expired, revoked
    ///   or wrong; 403 for an API token used from outside its networks; 429 over its rate.
    /// The request's one Authorization header, or nil. Found by a scan of the request's few
    /// fields: a lookup by name builds the fields' name index and joins the values into a new
    /// string. Two Authorization headers are refused: neither credential is trusted.
    func authorization(_ request: Request) throws -> String? {
        var found: String?
        for field in request.headers where field.name == .authorization {
            guard found == nil else {
                throw APIError(.unauthorized, "more than one Authorization header", hint: "send one credential")
            }
            found = field.value
        }
        return found
    }

    func authenticate(_ request: Request, from ip: String, certificate: CertificateRecord? = nil) throws
        -> AuthenticatedUser?
    {
        guard let header = try authorization(request) else {
            // A vault-issued client certificate (checked by FrontDoor).
            guard let certificate else { return nil }
            guard let user = try identities.user(named: certificate.user) else { return nil }
            return AuthenticatedUser(
                name: user.name, roles: user.roles, sessionID: nil, token: nil,
                mfaEnrolled: user.sealedTOTPSecret != nil)
        }
        let unauthorized = APIError(
            .unauthorized, "invalid or expired token", hint: "log in again: POST /v1/auth/login")
        guard header.hasPrefix("Bearer "), let token = BearerToken(text: header.dropFirst(7)) else {
            throw unauthorized
        }
        let now = Date()
        if token.isAPIToken {
            let hasher = try hasher("api-token")
            guard let record = try identities.token(id: token.id),
                hasher.verify(token.secret, against: record.secretHash)
            else { throw unauthorized }
            if let revoked = record.revokedAt {
                throw APIError(
                    .unauthorized, "token \(record.id) was revoked at \(iso8601(revoked))",
                    hint: "ask its owner for a new one: mvault token create")
            }
            guard record.expiresAt > now else {
                throw APIError(
                    .unauthorized, "token \(record.id) expired at \(iso8601(record.expiresAt))",
                    hint: "create a new one: mvault token create")
            }
            if !record.allowedNetworks.isEmpty && !record.allowedNetworks.contains(where: { $0.contains(ip) }) {
                throw APIError(.forbidden, "token \(record.id) may not be used from \(ip)")
            }
            guard let user = try identities.user(named: record.owner) else { throw unauthorized }
            try identities.touchToken(id: record.id, at: now)
            // Last: nothing after this reads the store, so a request answered from memory is
            // never charged twice.
            if let rate = record.requestsPerSecond,
                let wait = tokenLimiter.take("token:\(record.id)", perSecond: rate, burst: max(1, rate))
            {
                throw APIError(.tooManyRequests, "token \(record.id) is over its rate limit", retryAfter: wait)
            }
            return AuthenticatedUser(
                name: user.name, roles: user.roles, sessionID: nil, token: record,
                mfaEnrolled: user.sealedTOTPSecret != nil)
        }
        let hasher = try hasher("session")
        guard let session = try identities.session(id: token.id),
            hasher.verify(token.secret, against: session.secretHash)
        else { throw unauthorized }
        guard session.expiresAt > now else {
            try identities.deleteSession(id: session.id)
            throw unauthorized
        }
        guard let user = try identities.user(named: session.user) else { throw unauthorized }
        return AuthenticatedUser(
            name: user.name, roles: user.roles, sessionID: session.id, token: nil,
            mfaEnrolled: user.sealedTOTPSecret != nil)
    }

    /// The keyed hasher of secrets for `purpose` ("session", "api-token"…).
    func hasher(_ purpose: String) throws -> SecretHasher {
        hashers.hasher(purpose, key: try keys.derivedKey(purpose: purpose))
    }

    func openTOTPSecret(_ sealed: String) throws -> [UInt8] {
        try SealedSecret.open(sealed, key: keys.derivedKey(purpose: "totp"))
    }
}

/// Keyed hashers, made once per purpose and key (making one runs the HMAC key schedule).
final class SecretHashers: Sendable {
    let made = Mutex<[String: (key: [UInt8], hasher: SecretHasher)]>([:])

    func hasher(_ purpose: String, key: [UInt8]) -> SecretHasher {
        made.withLock { made in
            if let entry = made[purpose], entry.key == key { return entry.hasher }
            let hasher = SecretHasher(key: key)
            made[purpose] = (key, hasher)
            return hasher
        }
    }
}
