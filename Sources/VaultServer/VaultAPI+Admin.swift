import Foundation
import Hummingbird
import Identity
import VaultCore
import VaultWire

// Users, roles, grants and the access review. Every route here is `.authorized` at
// registration; the handlers only validate input and change the store.

extension VaultAPI {
    struct UserView: Encodable {
        var name: String
        var roles: [String]
        var mfa: Bool
        var createdAt: Date

        init(_ user: UserRecord) {
            name = user.name
            roles = user.roles
            mfa = user.sealedTOTPSecret != nil
            createdAt = user.createdAt
        }
    }

    struct UserList: Encodable {
        var users: [UserView]
    }

    var listUsers: AuthorizedHandler {
        { _, _, _ in
            try await blocking { [self] in try json(UserList(users: try identities.users().map(UserView.init))) }
        }
    }

    struct NewUser: Decodable {
        var name: String
        var password: String
        var roles: [String]?
    }

    var createUser: AuthorizedHandler {
        { [self] request, _, _ in
            let body = try await decode(NewUser.self, from: request)
            return try await blocking { [self] in
                try UserName.validate(body.name)
                let roles = try checkedRoles(body.roles ?? [])
                try PasswordPolicy.standard.check(body.password, username: body.name)
                let user = UserRecord(
                    name: body.name, passwordHash: try passwordHashing.hash(body.password), roles: roles,
                    createdAt: Date())
                try identities.createUser(user)
                return try json(UserView(user), status: .created)
            }
        }
    }

    var deleteUser: AuthorizedHandler {
        { [self] _, context, caller in
            let name = try parameter("user", context)
            guard name != caller.name else {
                throw APIError(.conflict, "you cannot delete your own account", hint: "ask another administrator")
            }
            try await blocking { [self] in try identities.deleteUser(named: name) }
            return Response(status: .noContent)
        }
    }

    struct NewPassword: Decodable {
        var password: String
    }

    /// Sets a password and ends the user's sessions.
    var setPassword: AuthorizedHandler {
        { [self] request, context, _ in
            let name = try parameter("user", context)
            let body = try await decode(NewPassword.self, from: request)
            try await blocking { [self] in
                try PasswordPolicy.standard.check(body.password, username: name)
                try identities.setPasswordHash(user: name, hash: try passwordHashing.hash(body.password))
                try identities.deleteSessions(user: name)
            }
            return Response(status: .noContent)
        }
    }

    struct RoleAssignment: Decodable {
        var roles: [String]
    }

    var setRoles: AuthorizedHandler {
        { [self] request, context, _ in
            let name = try parameter("user", context)
            let body = try await decode(RoleAssignment.self, from: request)
            return try await blocking { [self] in
                guard var user = try identities.user(named: name) else { throw VaultError.unknownUser(name) }
                user.roles = try checkedRoles(body.roles)
                try identities.updateUser(user)
                return try json(UserView(user))
            }
        }
    }

    /// Removes a user's TOTP enrollment (a lost authenticator with no recovery codes left).
    var resetMFA: AuthorizedHandler {
        { [self] _, context, _ in
            let name = try parameter("user", context)
            return try await blocking { [self] in
                guard var user = try identities.user(named: name) else { throw VaultError.unknownUser(name) }
                user.sealedTOTPSecret = nil
                user.pendingTOTPSecret = nil
                user.totpLastStep = nil
                user.recoveryCodeHashes = []
                try identities.updateUser(user)
                try identities.deleteSessions(user: name)
                return try json(UserView(user))
            }
        }
    }

    /// Sorted, de-duplicated role names that all exist.
    func checkedRoles(_ names: [String]) throws -> [String] {
        for name in names where try identities.role(named: name) == nil {
            throw APIError(.badRequest, "no role named \(name)", hint: "list roles: GET /v1/roles")
        }
        return Array(Set(names)).sorted()
    }

    // MARK: roles

    struct RoleView: Encodable {
        var name: String
        var capabilities: [Capability]
        var requireMFA: Bool
        var allowedNetworks: [IPNetwork]
        var builtIn: Bool

        init(_ role: RoleRecord) {
            name = role.name
            capabilities = role.capabilities.sorted()
            requireMFA = role.requireMFA
            allowedNetworks = role.allowedNetworks
            builtIn = role.builtIn
        }
    }

    struct RoleList: Encodable {
        var roles: [RoleView]
    }

    var listRoles: AuthorizedHandler {
        { _, _, _ in
            try await blocking { [self] in try json(RoleList(roles: try identities.roles().map(RoleView.init))) }
        }
    }

    struct RoleChange: Decodable {
        var name: String?
        var capabilities: [Capability]?
        var requireMFA: Bool?
        var allowedNetworks: [IPNetwork]?
    }

    var createRole: AuthorizedHandler {
        { [self] request, _, _ in
            let body = try await decode(RoleChange.self, from: request)
            guard let name = body.name, let capabilities = body.capabilities, !capabilities.isEmpty else {
                throw APIError(
                    .badRequest, "a new role needs a name and at least one capability",
                    hint: #"e.g. {"name": "ml-reader", "capabilities": ["list", "read", "pull"]}"#)
            }
            try RoleRecord.validate(name: name)
            let role = RoleRecord(
                name: name, capabilities: Set(capabilities), requireMFA: body.requireMFA ?? false,
                allowedNetworks: body.allowedNetworks ?? [], createdAt: Date())
            try await blocking { [self] in try identities.createRole(role) }
            return try json(RoleView(role), status: .created)
        }
    }

    var updateRole: AuthorizedHandler {
        { [self] request, context, _ in
            let name = try parameter("role", context)
            let body = try await decode(RoleChange.self, from: request)
            return try await blocking { [self] in
                guard var role = try identities.role(named: name) else { throw VaultError.unknownRole(name) }
                if let capabilities = body.capabilities {
                    guard !capabilities.isEmpty else { throw APIError(.badRequest, "a role needs a capability") }
                    role.capabilities = Set(capabilities)
                }
                if let requireMFA = body.requireMFA { role.requireMFA = requireMFA }
                if let networks = body.allowedNetworks { role.allowedNetworks = networks }
                try identities.updateRole(role)
                return try json(RoleView(role))
            }
        }
    }

    var deleteRole: AuthorizedHandler {
        { [self] _, context, _ in
            let name = try parameter("role", context)
            try await blocking { [self] in try identities.deleteRole(named: name) }
            return Response(status: .noContent)
        }
    }

    // MARK: grants

    struct GrantView: Encodable {
        var id: String
        var user: String?
        var role: String?
        var pattern: String
        var capabilities: [Capability]
        var effect: GrantRecord.Effect
        var expiresAt: Date?
        var createdAt: Date
        var createdBy: String
        var lastUsedAt: Date?

        init(_ grant: GrantRecord) {
            id = grant.id
            if case .user(let name) = grant.subject { user = name }
            if case .role(let name) = grant.subject { role = name }
            pattern = grant.pattern.text
            capabilities = grant.capabilities.sorted()
            effect = grant.effect
            expiresAt = grant.expiresAt
            createdAt = grant.createdAt
            createdBy = grant.createdBy
            lastUsedAt = grant.lastUsedAt
        }
    }

    struct GrantList: Encodable {
        var grants: [GrantView]
    }

    var listGrants: AuthorizedHandler {
        { _, _, _ in
            try await blocking { [self] in try json(GrantList(grants: try identities.grants().map(GrantView.init))) }
        }
    }

    var createGrant: AuthorizedHandler {
        { [self] request, context, caller in
            let body = try await decode(NewGrant.self, from: request)
            let now = Date()
            let (subject, expires) = try body.validate(now: now)
            let grant = GrantRecord(
                id: "g" + Hex.encode(SecretGenerator.bytes(6)), subject: subject, pattern: body.pattern,
                capabilities: Set(body.capabilities), effect: body.effect ?? .allow, expiresAt: expires, createdAt: now,
                createdBy: caller.name)
            try await blocking { [self] in
                try requireDelegable(grant, by: caller, from: context.remoteIP, removing: false)
                try identities.createGrant(grant)
            }
            return try json(GrantView(grant), status: .created)
        }
    }

    var deleteGrant: AuthorizedHandler {
        { [self] _, context, caller in
            let id = try parameter("grant", context)
            try await blocking { [self] in
                guard let grant = try identities.grants().first(where: { $0.id == id }) else {
                    throw VaultError.unknownGrant(id)
                }
                try requireDelegable(grant, by: caller, from: context.remoteIP, removing: true)
                try identities.deleteGrant(id: id)
            }
            return Response(status: .noContent)
        }
    }

    /// The delegation rule: the `grant` capability lets a caller hand out (or take back) only what
    /// it holds itself, on models its own rights cover. Administrators may make any grant;
    /// granting `admin`, `grant` or `audit`, and removing a deny, are theirs alone. Blocks (SQLite).
    func requireDelegable(_ grant: GrantRecord, by caller: AuthenticatedUser, from ip: String, removing: Bool) throws {
        if try authorize(caller, .admin, .vault, from: ip).allowed { return }
        let vaultWide = grant.capabilities.intersection([.admin, .grant, .audit]).sorted()
        guard vaultWide.isEmpty else {
            throw APIError(
                .forbidden,
                "only an administrator may \(removing ? "remove" : "make") a grant of \(vaultWide.map(\.rawValue).joined(separator: ", "))",
                hint: "ask an administrator")
        }
        guard !(removing && grant.effect == .deny) else {
            throw APIError(.forbidden, "only an administrator may remove a deny grant", hint: "ask an administrator")
        }
        for capability in grant.capabilities.sorted() {
            let decision = try authorize(caller, capability, .pattern(grant.pattern), from: ip)
            guard decision.allowed else {
                throw APIError(
                    .forbidden,
                    "you may only \(removing ? "remove grants of" : "grant") what you hold: \(decision.reason)",
                    hint: "use a pattern your own roles or grants cover, or ask an administrator")
            }
        }
    }

    // MARK: access review

    struct ReviewEntry: Encodable {
        var user: String
        var model: String
        var capabilities: [Capability]
        /// "role consumer", "grant g12ab… (role ml)", or "denied by grant g…".
        var via: String
        var grant: String?
        var expiresAt: Date?
        var lastUsedAt: Date?
        var effect: GrantRecord.Effect
    }

    struct Review: Encodable {
        var entries: [ReviewEntry]
        /// With `stale=DAYS`: grants unused (or never used) for that long.
        var staleGrants: [GrantView]?
    }

    /// Who can do what on which model, through which role or grant; `?model=acme/*&user=bob`
    /// narrow it, `?stale=DAYS` adds the grants unused that long.
    var accessReview: AuthorizedHandler {
        { [self] request, _, _ in
            let query = request.uri.queryParameters
            let modelFilter = try query["model"].map { try ModelPattern(String($0)) }
            let userFilter = query["user"].map(String.init)
            let staleDays = try query["stale"].map { text in
                guard let days = Int(text), days >= 0 else {
                    throw APIError(.badRequest, "stale must be a number of days")
                }
                return days
            }
            return try await blocking { [self] in
                let now = Date()
                let roles = Dictionary(uniqueKeysWithValues: try identities.roles().map { ($0.name, $0) })
                let grants = try identities.grants().filter { $0.isActive(at: now) }
                var entries: [ReviewEntry] = []
                for user in try identities.users() where userFilter == nil || user.name == userFilter {
                    for name in user.roles {
                        // A role covers every model, so it is listed whatever the model filter.
                        guard let role = roles[name] else { continue }
                        var via = "role \(name)"
                        if role.requireMFA && user.sealedTOTPSecret == nil { via += " (inactive: MFA not enrolled)" }
                        if !role.allowedNetworks.isEmpty {
                            via += " (from \(role.allowedNetworks.map(\.description).joined(separator: ", ")))"
                        }
                        entries.append(
                            ReviewEntry(
                                user: user.name, model: "*", capabilities: role.capabilities.sorted(), via: via,
                                effect: .allow))
                    }
                    for grant in grants {
                        switch grant.subject {
                        case .user(let name) where name == user.name: break
                        case .role(let name) where user.roles.contains(name): break
                        default: continue
                        }
                        if let modelFilter,
                            !(modelFilter.matches(grant.pattern.text) || grant.pattern.matches(modelFilter.text))
                        {
                            continue
                        }
                        var via = "grant \(grant.id)"
                        if case .role(let name) = grant.subject { via += " (role \(name))" }
                        entries.append(
                            ReviewEntry(
                                user: user.name, model: grant.pattern.text, capabilities: grant.capabilities.sorted(),
                                via: via, grant: grant.id, expiresAt: grant.expiresAt, lastUsedAt: grant.lastUsedAt,
                                effect: grant.effect))
                    }
                }
                var stale: [GrantView]?
                if let staleDays {
                    let cutoff = now.addingTimeInterval(-Double(staleDays) * 86_400)
                    stale = grants.filter { ($0.lastUsedAt ?? $0.createdAt) <= cutoff }.map(GrantView.init)
                }
                return try json(Review(entries: entries, staleGrants: stale))
            }
        }
    }

    func parameter(_ name: String, _ context: VaultRequestContext) throws -> String {
        guard let value = context.path.get(name), !value.isEmpty else {
            throw APIError(.badRequest, "missing \(name) in the path")
        }
        return value
    }
}
