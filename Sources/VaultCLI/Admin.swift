import ArgumentParser
import Foundation
import Identity
import VaultCore

// Administration over the API, as the logged-in user (see `mvault login`).

/// Runs `body` with a client for the saved session.
func remote<T>(_ body: (RemoteClient) async throws -> T) async throws -> T {
    try await RemoteClient.with(try RemoteProfile.require(), body)
}

/// Reads a new password (twice on a terminal) and checks it against the password policy.
func readNewPassword(for user: String) throws -> String {
    guard let password = Terminal.readSecret(prompt: "new password for \(user): "), !password.isEmpty else {
        throw VaultError.invalidArgument("no password given")
    }
    if Terminal.stdinIsTTY {
        guard Terminal.readSecret(prompt: "again: ") == password else {
            throw VaultError.invalidArgument("the passwords differ")
        }
    }
    try PasswordPolicy.standard.check(password, username: user)
    return password
}

func dateText(_ date: Date?) -> String { date.map(iso8601) ?? "never" }

/// `30d`, `12h`, `45m`, `90s` or a plain number of seconds → seconds.
func parseDuration(_ text: String) throws -> Int {
    let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    var number = Substring(text)
    var scale = 1
    if let unit = text.last, let factor = units[unit] {
        number = text.dropLast()
        scale = factor
    }
    guard let value = Int(number), value > 0 else {
        throw VaultError.invalidArgument("invalid duration '\(text)': use e.g. 30d, 12h, 45m or 90s")
    }
    return value * scale
}

struct User: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage users (needs the admin capability).",
        subcommands: [UserList.self, UserAdd.self, UserRemove.self, UserPassword.self, UserRoles.self, UserMFA.self])
}

struct UserView: Decodable {
    var name: String
    var roles: [String]
    var mfa: Bool
}

struct UserList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List users.")

    struct Users: Decodable { var users: [UserView] }
    @OptionGroup var output: JSONOption

    func run() async throws {
        let data = try await remote { try await $0.call(.GET, "/v1/users") }
        if output.json { return JSONOutput.print(raw: data) }
        let users = try RemoteClient.decoder.decode(Users.self, from: data).users
        for user in users {
            let roles = user.roles.isEmpty ? "no roles" : user.roles.joined(separator: ",")
            print("\(user.name)  \(roles)  mfa: \(user.mfa ? "enrolled" : "no")")
        }
    }
}

struct UserAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Create a user; the password is read from the terminal or standard input.")

    @Argument(help: "The user name.") var name: String
    @Option(name: .customLong("role"), help: "A role to give (repeatable).") var roles: [String] = []

    func run() async throws {
        try UserName.validate(name)
        let password = try readNewPassword(for: name)
        let user = try await remote {
            try await $0.call(
                UserView.self, .POST, "/v1/users", json: ["name": name, "password": password, "roles": roles])
        }
        print(
            "created user \(user.name)\(user.roles.isEmpty ? "" : " with roles \(user.roles.joined(separator: ","))")")
    }
}

struct UserRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Delete a user with their sessions, tokens and grants.")

    @Argument(help: "The user name.") var name: String

    func run() async throws {
        try await remote { try await $0.call(.DELETE, "/v1/users/\(name)") }
        print("deleted user \(name)")
    }
}

struct UserPassword: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd", abstract: "Set a user's password; their sessions end.")

    @Argument(help: "The user name.") var name: String

    func run() async throws {
        let password = try readNewPassword(for: name)
        try await remote { try await $0.call(.PUT, "/v1/users/\(name)/password", json: ["password": password]) }
        print("password of \(name) changed; their sessions have ended")
    }
}

struct UserRoles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roles", abstract: "Replace a user's roles (none given: take every role away).")

    @Argument(help: "The user name.") var name: String
    @Option(name: .customLong("role"), help: "A role to hold (repeatable).") var roles: [String] = []

    func run() async throws {
        let user = try await remote {
            try await $0.call(UserView.self, .PUT, "/v1/users/\(name)/roles", json: ["roles": roles])
        }
        print("\(user.name) now holds: \(user.roles.isEmpty ? "no roles" : user.roles.joined(separator: ","))")
    }
}

struct UserMFA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mfa", abstract: "Enroll your own TOTP authenticator, or reset a user's.",
        subcommands: [MFAEnroll.self, MFAReset.self])
}

struct MFAEnroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enroll a TOTP authenticator for yourself: scan the QR code, then type a code to confirm.")

    struct Enrollment: Decodable {
        var secret: String
        var uri: String
    }

    struct Confirmed: Decodable { var recoveryCodes: [String] }
    struct Caller: Decodable { var mfaEnrolled: Bool? }

    func run() async throws {
        try await remote { client in
            // Replacing an enrolled authenticator needs a code from it (or a recovery code).
            var proof: [String: String] = [:]
            if try await client.call(Caller.self, .GET, "/v1/auth/whoami").mfaEnrolled == true {
                let prompt = "current code from your authenticator (or a recovery code): "
                guard let code = Terminal.readSecret(prompt: prompt), !code.isEmpty else {
                    throw VaultError.invalidArgument("no code given; your authenticator was not replaced")
                }
                proof["code"] = code
            }
            let enrollment = try await client.call(Enrollment.self, .POST, "/v1/auth/mfa/enroll", json: proof)
            print("Scan this with your authenticator app, or enter the secret by hand:\n")
            print(try QRCode(text: enrollment.uri).terminalText)
            print("secret: \(enrollment.secret)")
            print("uri:    \(enrollment.uri)\n")
            guard let code = Terminal.readSecret(prompt: "code from the authenticator: "), !code.isEmpty else {
                throw VaultError.invalidArgument("no code given; the enrollment was not confirmed")
            }
            let confirmed = try await client.call(
                Confirmed.self, .POST, "/v1/auth/mfa/confirm", json: ["code": code])
            print("MFA enrolled. Recovery codes (each works once; store them offline — they are not shown again):")
            for recovery in confirmed.recoveryCodes { print("  \(recovery)") }
        }
    }
}

struct MFAReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset", abstract: "Remove a user's TOTP enrollment (a lost authenticator); needs admin.")

    @Argument(help: "The user name.") var name: String

    func run() async throws {
        try await remote { try await $0.call(.DELETE, "/v1/users/\(name)/mfa") }
        print("MFA of \(name) removed; their sessions have ended")
    }
}

// MARK: roles

struct Role: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage roles: built-in (admin, publisher, consumer, auditor) and custom.",
        subcommands: [RoleList.self, RoleCreate.self, RoleSet.self, RoleRemove.self])
}

struct RoleView: Decodable {
    var name: String
    var capabilities: [String]
    var requireMFA: Bool
    var allowedNetworks: [String]
    var builtIn: Bool

    var line: String {
        var text = "\(name)  \(capabilities.joined(separator: ","))"
        if requireMFA { text += "  requires MFA" }
        if !allowedNetworks.isEmpty { text += "  from \(allowedNetworks.joined(separator: ","))" }
        if builtIn { text += "  (built-in)" }
        return text
    }
}

struct RoleList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List roles.")

    struct Roles: Decodable { var roles: [RoleView] }
    @OptionGroup var output: JSONOption

    func run() async throws {
        let data = try await remote { try await $0.call(.GET, "/v1/roles") }
        if output.json { return JSONOutput.print(raw: data) }
        for role in try RemoteClient.decoder.decode(Roles.self, from: data).roles { print(role.line) }
    }
}

struct RoleCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a custom role.")

    @Argument(help: "The role name.") var name: String
    @Option(help: "Capabilities, e.g. list,read,pull (or all).") var capabilities: String
    @Flag(help: "Holders must have MFA enrolled for the role to apply.") var requireMFA = false
    @Option(name: .customLong("network"), help: "Apply only from this CIDR network (repeatable).")
    var networks: [String] = []

    func run() async throws {
        let caps = try Capability.parseList(capabilities).sorted().map(\.rawValue)
        for network in networks { _ = try IPNetwork(network) }
        let role = try await remote {
            try await $0.call(
                RoleView.self, .POST, "/v1/roles",
                json: ["name": name, "capabilities": caps, "requireMFA": requireMFA, "allowedNetworks": networks])
        }
        print("created role \(role.line)")
    }
}

struct RoleSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Change a role's capabilities (custom roles), MFA requirement or networks.")

    @Argument(help: "The role name.") var name: String
    @Option(help: "New capabilities, e.g. list,read,pull.") var capabilities: String?
    @Option(help: "true or false.") var requireMFA: Bool?
    @Option(name: .customLong("network"), help: "Apply only from this CIDR network (repeatable).")
    var networks: [String] = []
    @Flag(help: "Remove the network restriction.") var anyNetwork = false

    func run() async throws {
        var body: [String: Any] = [:]
        if let capabilities { body["capabilities"] = try Capability.parseList(capabilities).sorted().map(\.rawValue) }
        if let requireMFA { body["requireMFA"] = requireMFA }
        for network in networks { _ = try IPNetwork(network) }
        if !networks.isEmpty { body["allowedNetworks"] = networks }
        if anyNetwork { body["allowedNetworks"] = [String]() }
        guard !body.isEmpty else {
            throw VaultError.invalidArgument("nothing to change: give --capabilities, --require-mfa or --network")
        }
        let role = try await remote { try await $0.call(RoleView.self, .PATCH, "/v1/roles/\(name)", json: body) }
        print("role \(role.line)")
    }
}

struct RoleRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Delete a custom role that no user or grant refers to.")

    @Argument(help: "The role name.") var name: String

    func run() async throws {
        try await remote { try await $0.call(.DELETE, "/v1/roles/\(name)") }
        print("deleted role \(name)")
    }
}

// MARK: grants

struct Grant: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Grant or deny capabilities on model name patterns to users and roles.",
        subcommands: [GrantList.self, GrantAdd.self, GrantRemove.self])
}

struct GrantView: Decodable {
    var id: String
    var user: String?
    var role: String?
    var pattern: String
    var capabilities: [String]
    var effect: String
    var expiresAt: Date?
    var lastUsedAt: Date?

    var line: String {
        let subject = user.map { "user \($0)" } ?? role.map { "role \($0)" } ?? "?"
        let expiry = expiresAt.map { "  expires \(iso8601($0))" } ?? ""
        return "\(id)  \(effect) \(capabilities.joined(separator: ",")) on \(pattern) to \(subject)\(expiry)"
            + "  last used \(dateText(lastUsedAt))"
    }
}

struct GrantList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List grants.")

    struct Grants: Decodable { var grants: [GrantView] }
    @OptionGroup var output: JSONOption

    func run() async throws {
        let data = try await remote { try await $0.call(.GET, "/v1/grants") }
        if output.json { return JSONOutput.print(raw: data) }
        let grants = try RemoteClient.decoder.decode(Grants.self, from: data).grants
        if grants.isEmpty { print("no grants") }
        for grant in grants { print(grant.line) }
    }
}

struct GrantAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Grant (or with --deny, refuse) capabilities on a model pattern.")

    @Option(help: "The user it applies to.") var user: String?
    @Option(help: "The role it applies to (every holder).") var role: String?
    @Option(help: "Model name pattern; * stands for any characters (acme/*, acme/llama-*).") var pattern: String
    @Option(help: "Capabilities, e.g. pull,read (or all).") var capabilities: String
    @Flag(help: "An explicit deny, which beats every allow.") var deny = false
    @Option(help: "Expire after this long: 30d, 12h, 45m, 90s.") var expires: String?

    func run() async throws {
        guard (user == nil) != (role == nil) else {
            throw VaultError.invalidArgument("give exactly one of --user or --role")
        }
        _ = try ModelPattern(pattern)
        var body: [String: Any] = [
            "pattern": pattern, "capabilities": try Capability.parseList(capabilities).sorted().map(\.rawValue),
            "effect": deny ? "deny" : "allow",
        ]
        if let user { body["user"] = user }
        if let role { body["role"] = role }
        if let expires { body["expiresIn"] = try parseDuration(expires) }
        let grant = try await remote { try await $0.call(GrantView.self, .POST, "/v1/grants", json: body) }
        print("created grant \(grant.line)")
    }
}

struct GrantRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Revoke a grant.")

    @Argument(help: "The grant id (from `mvault grant ls`).") var id: String

    func run() async throws {
        try await remote { try await $0.call(.DELETE, "/v1/grants/\(id)") }
        print("revoked grant \(id)")
    }
}

// MARK: tokens

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "API tokens for machines: scoped, expiring, revocable.",
        subcommands: [TokenCreate.self, TokenList.self, TokenRevoke.self])
}

struct TokenView: Decodable {
    struct Scope: Decodable {
        var pattern: String
        var capabilities: [String]
    }

    var id: String
    var name: String
    var owner: String
    var scopes: [Scope]
    var expiresAt: Date
    var revokedAt: Date?
    var lastUsedAt: Date?
    var allowedNetworks: [String]
    var requestsPerSecond: Double?
    var token: String?

    var line: String {
        let scopes = scopes.map { "\($0.pattern):\($0.capabilities.joined(separator: ","))" }.joined(separator: " ")
        var state = revokedAt.map { "revoked \(iso8601($0))" } ?? "expires \(iso8601(expiresAt))"
        if revokedAt == nil && expiresAt < Date() { state = "expired \(iso8601(expiresAt))" }
        var text = "\(id)  \(name)  \(scopes)  \(state)  last used \(dateText(lastUsedAt))"
        if !allowedNetworks.isEmpty { text += "  from \(allowedNetworks.joined(separator: ","))" }
        if let requestsPerSecond { text += "  \(requestsPerSecond)/s" }
        return text
    }
}

struct TokenCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an API token; its secret is printed once.",
        discussion: """
            A machine uses it as MVAULT_TOKEN (with MVAULT_ADDR), or as an HTTP bearer token. \
            It can do what you can, narrowed to its scopes.
            """)

    @Argument(help: "A name saying what it is for, e.g. ci-deploy.") var name: String
    @Option(name: .customLong("scope"), help: "PATTERN:CAPABILITIES, e.g. 'acme/*:pull,read' (repeatable).")
    var scopes: [String]
    @Option(help: "Lifetime: 30d, 12h, 45m or 90s.") var expires: String = "30d"
    @Option(name: .customLong("network"), help: "Usable only from this CIDR network (repeatable).")
    var networks: [String] = []
    @Option(help: "Requests per second it may make.") var rate: Double?

    func run() async throws {
        var scopeList: [[String: Any]] = []
        for scope in scopes {
            guard let colon = scope.lastIndex(of: ":") else {
                throw VaultError.invalidArgument("invalid scope '\(scope)': use PATTERN:CAPABILITIES, e.g. acme/*:pull")
            }
            let pattern = try ModelPattern(String(scope[..<colon]))
            let caps = try Capability.parseList(String(scope[scope.index(after: colon)...]))
            scopeList.append(["pattern": pattern.text, "capabilities": caps.sorted().map(\.rawValue)])
        }
        guard !scopeList.isEmpty else { throw VaultError.invalidArgument("give at least one --scope") }
        for network in networks { _ = try IPNetwork(network) }
        var body: [String: Any] = [
            "name": name, "scopes": scopeList, "expiresIn": try parseDuration(expires), "allowedNetworks": networks,
        ]
        if let rate { body["requestsPerSecond"] = rate }
        let token = try await remote { try await $0.call(TokenView.self, .POST, "/v1/tokens", json: body) }
        print("created token \(token.line)")
        print("secret (shown only now): \(token.token ?? "")")
    }
}

struct TokenList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List your tokens (never secrets).")

    struct Tokens: Decodable { var tokens: [TokenView] }
    @OptionGroup var output: JSONOption

    func run() async throws {
        let data = try await remote { try await $0.call(.GET, "/v1/tokens") }
        if output.json { return JSONOutput.print(raw: data) }
        let tokens = try RemoteClient.decoder.decode(Tokens.self, from: data).tokens
        if tokens.isEmpty { print("no tokens") }
        for token in tokens { print(token.line) }
    }
}

struct TokenRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token at once.")

    @Argument(help: "The token id (from `mvault token ls`).") var id: String

    func run() async throws {
        try await remote { try await $0.call(.DELETE, "/v1/tokens/\(id)") }
        print("revoked token \(id)")
    }
}

// MARK: client certificates

struct Cert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Client certificates for mutual TLS: each authenticates a machine as a user.",
        subcommands: [CertIssue.self, CertList.self, CertRevoke.self])
}

struct CertView: Decodable {
    var serial: String
    var user: String
    var expiresAt: Date
    var revokedAt: Date?
    var certificate: String?
    var privateKey: String?

    var line: String {
        "\(serial)  \(user)  " + (revokedAt.map { "revoked \(iso8601($0))" } ?? "expires \(iso8601(expiresAt))")
    }
}

struct CertIssue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue", abstract: "Issue a client certificate that authenticates as USER (needs admin).",
        discussion: """
            Writes USER.crt and USER.key (mode 0600) into --out. A machine then connects with \
            MVAULT_ADDR, MVAULT_CLIENT_CERT and MVAULT_CLIENT_KEY set, to a server whose \
            tls.clientCertificates is optional or required.
            """)

    @Argument(help: "The user the certificate authenticates as.") var user: String
    @Option(help: "Validity in days.") var days = 90
    @Option(help: "Directory for the certificate and key.") var out = "."
    @Flag(help: "Overwrite USER.crt and USER.key if they exist.") var force = false

    func run() async throws {
        try UserName.validate(user)
        let directory = URL(fileURLWithPath: out)
        let certURL = directory.appendingPathComponent("\(user).crt")
        let keyURL = directory.appendingPathComponent("\(user).key")
        for url in [certURL, keyURL] where !force && FileManager.default.fileExists(atPath: url.path) {
            throw VaultError.outputExists(path: url.path)
        }
        let issued = try await remote {
            try await $0.call(CertView.self, .POST, "/v1/certificates", json: ["user": user, "days": days])
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try AtomicFile.write(Data((issued.privateKey ?? "").utf8), to: keyURL, mode: 0o600)
        try AtomicFile.write(Data((issued.certificate ?? "").utf8), to: certURL, mode: 0o644)
        print("issued \(issued.line)")
        print("wrote \(certURL.path) and \(keyURL.path) (the key is not kept by the vault)")
    }
}

struct CertList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List issued certificates.")

    struct Certificates: Decodable { var certificates: [CertView] }
    @OptionGroup var output: JSONOption

    func run() async throws {
        let data = try await remote { try await $0.call(.GET, "/v1/certificates") }
        if output.json { return JSONOutput.print(raw: data) }
        let list = try RemoteClient.decoder.decode(Certificates.self, from: data).certificates
        if list.isEmpty { print("no certificates") }
        for certificate in list { print(certificate.line) }
    }
}

struct CertRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a certificate; the server refuses it from then on.")

    @Argument(help: "The serial (from `mvault cert ls`).") var serial: String

    func run() async throws {
        try await remote { try await $0.call(.DELETE, "/v1/certificates/\(serial)") }
        print("revoked certificate \(serial)")
    }
}

// MARK: access review

struct Access: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Review who can do what.", subcommands: [AccessReview.self])
}

struct AccessReview: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Who can do what on which model, through which role or grant, and when each grant was last used.")

    @Option(help: "Only rights that can reach this model or pattern.") var model: String?
    @Option(help: "Only this user.") var user: String?
    @Option(help: "Also list grants unused for this many days.") var stale: Int?
    @OptionGroup var output: JSONOption

    struct Entry: Decodable {
        var user: String
        var model: String
        var capabilities: [String]
        var via: String
        var effect: String
        var expiresAt: Date?
        var lastUsedAt: Date?
        var grant: String?
    }

    struct Review: Decodable {
        var entries: [Entry]
        var staleGrants: [GrantView]?
    }

    func run() async throws {
        var query: [String] = []
        if let model {
            _ = try ModelPattern(model)
            query.append("model=\(model.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? model)")
        }
        if let user { query.append("user=\(user)") }
        if let stale { query.append("stale=\(stale)") }
        let path = "/v1/access/review" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let data = try await remote { try await $0.call(.GET, path) }
        if output.json { return JSONOutput.print(raw: data) }
        let review = try RemoteClient.decoder.decode(Review.self, from: data)
        if review.entries.isEmpty { print("no one has access") }
        for entry in review.entries {
            var line = "\(entry.user)  \(entry.effect) \(entry.capabilities.joined(separator: ",")) on \(entry.model)"
            line += "  via \(entry.via)"
            if let expires = entry.expiresAt { line += "  expires \(iso8601(expires))" }
            if entry.grant != nil { line += "  last used \(dateText(entry.lastUsedAt))" }
            print(line)
        }
        if let stale = review.staleGrants {
            print("\ngrants unused for \(self.stale ?? 0) days or more:\(stale.isEmpty ? " none" : "")")
            for grant in stale { print("  \(grant.line)") }
        }
    }
}
