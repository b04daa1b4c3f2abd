import Foundation

/// What a caller may do to a model (or, for `grant`, `admin` and `audit`, to the vault).
public enum Capability: String, CaseIterable, Sendable, Codable, Comparable {
    /// `audit`: read the audit log, its checkpoints and proofs, and hash values to search it.
    case list, read, pull, push, delete, grant, admin, audit

    public static func < (a: Capability, b: Capability) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Parses `pull,read` (or `all`).
    public static func parseList(_ text: String) throws(VaultError) -> Set<Capability> {
        if text == "all" { return Set(allCases) }
        var result = Set<Capability>()
        for part in text.split(separator: ",") {
            guard let capability = Capability(rawValue: part.trimmingCharacters(in: .whitespaces)) else {
                throw .invalidArgument(
                    "unknown capability '\(part)': use \(allCases.map(\.rawValue).joined(separator: ", ")) or all")
            }
            result.insert(capability)
        }
        guard !result.isEmpty else { throw .invalidArgument("give at least one capability, e.g. pull,read") }
        return result
    }
}

/// What a request is about.
public enum AccessTarget: Sendable, Equatable, CustomStringConvertible {
    /// One model, by name.
    case model(String)
    /// The vault as a whole (users, roles, grants): only roles and grants on `*` count.
    case vault
    /// Some model: allowed when any model could be (listing, which then filters per model).
    case anyModel
    /// Every model a pattern names (what a grant on it would give): allowed only by a role, or a
    /// grant whose pattern covers all of it, and refused by a deny on any model it names.
    case pattern(ModelPattern)

    public var description: String {
        switch self {
        case .model(let name): name
        case .vault: "the vault"
        case .anyModel: "any model"
        case .pattern(let pattern): pattern.text
        }
    }

    func covered(by pattern: ModelPattern) -> Bool {
        switch self {
        case .model(let name): pattern.matches(name)
        case .vault: pattern.text == "*"
        case .anyModel: true
        case .pattern(let names): pattern.covers(names)
        }
    }

    /// A deny on `pattern` refuses this target: for `.anyModel` only a deny on every model does.
    func refused(by pattern: ModelPattern) -> Bool {
        switch self {
        case .model(let name): pattern.matches(name)
        case .vault, .anyModel: pattern.text == "*"
        case .pattern(let names): pattern.overlaps(names)
        }
    }
}

/// Everything the policy needs to answer one question.
public struct AccessRequest: Sendable {
    public var user: String
    /// The roles the user holds (roles that no longer exist are simply absent).
    public var roles: [RoleRecord]
    public var mfaEnrolled: Bool
    /// Grants to the user and to the roles they hold; expired ones are ignored here.
    public var grants: [GrantRecord]
    /// The API token the request came with, if any: the answer is narrowed to its scopes.
    public var token: TokenRecord?
    public var capability: Capability
    public var target: AccessTarget
    public var sourceIP: String
    public var now: Date

    public init(
        user: String, roles: [RoleRecord], mfaEnrolled: Bool, grants: [GrantRecord], token: TokenRecord? = nil,
        capability: Capability, target: AccessTarget, sourceIP: String, now: Date
    ) {
        self.user = user
        self.roles = roles
        self.mfaEnrolled = mfaEnrolled
        self.grants = grants
        self.token = token
        self.capability = capability
        self.target = target
        self.sourceIP = sourceIP
        self.now = now
    }
}

/// The outcome of one authorization question, with the rule that decided it.
public struct AccessDecision: Sendable, Equatable {
    public var allowed: Bool
    /// e.g. "role consumer allows pull on *", or "no role or grant allows push on acme/x".
    public var reason: String
    /// The grant that decided, when one did (its last use is recorded).
    public var grantID: String?

    public init(allowed: Bool, reason: String, grantID: String? = nil) {
        self.allowed = allowed
        self.reason = reason
        self.grantID = grantID
    }
}

/// The single policy decision point. Deny by default; in order:
/// 1. a deny grant matching the capability and model refuses, whatever else allows;
/// 2. an API token must have a scope covering the capability and model;
/// 3. a role the user holds allows its capabilities on every model — if the user meets the
///    role's MFA and network requirements;
/// 4. an allow grant (to the user, or to a role they hold and meet the requirements of) allows
///    its capabilities on the models its pattern matches, until it expires.
public struct Policy: Sendable {
    public init() {}

    public func decide(_ q: AccessRequest) -> AccessDecision {
        let capability = q.capability.rawValue
        // A caller holds a few roles and is granted a few things: searched, not indexed, and
        // filtered lazily: with one role and no unmet requirement, deciding allocates only the reason.
        func held(_ name: String) -> RoleRecord? { q.roles.first { $0.name == name } }
        let grants = q.grants.lazy.filter { grant in
            guard grant.isActive(at: q.now), grant.capabilities.contains(q.capability) else { return false }
            switch grant.subject {
            case .user(let name): return name == q.user
            case .role(let name): return held(name) != nil
            }
        }
        for grant in grants where grant.effect == .deny && q.target.refused(by: grant.pattern) {
            return AccessDecision(
                allowed: false,
                reason: "grant \(grant.id) denies \(capability) on \(grant.pattern) to \(grant.subject)",
                grantID: grant.id)
        }
        if let token = q.token,
            !token.scopes.contains(where: { $0.capabilities.contains(q.capability) && q.target.covered(by: $0.pattern) }
            )
        {
            return AccessDecision(
                allowed: false, reason: "token \(token.id) is not scoped for \(capability) on \(q.target)")
        }
        var unmet: [String] = []
        /// Why `role` gives nothing to this request, or nil when it applies.
        func requirementUnmet(_ role: RoleRecord) -> String? {
            if role.requireMFA && !q.mfaEnrolled {
                return "role \(role.name) requires MFA, which \(q.user) has not enrolled"
            }
            if !role.allowedNetworks.isEmpty && !role.allowedNetworks.contains(where: { $0.contains(q.sourceIP) }) {
                return
                    "role \(role.name) is limited to \(role.allowedNetworks.map(\.description).joined(separator: ", "))"
            }
            return nil
        }
        let roles = q.roles.count > 1 ? q.roles.sorted { $0.name < $1.name } : q.roles
        for role in roles where role.capabilities.contains(q.capability) {
            if let why = requirementUnmet(role) {
                unmet.append(why)
                continue
            }
            return AccessDecision(allowed: true, reason: "role \(role.name) allows \(capability) on *")
        }
        for grant in grants where grant.effect == .allow && q.target.covered(by: grant.pattern) {
            if case .role(let name) = grant.subject, let role = held(name), let why = requirementUnmet(role) {
                unmet.append(why)
                continue
            }
            return AccessDecision(
                allowed: true,
                reason: "grant \(grant.id) allows \(capability) on \(grant.pattern) to \(grant.subject)",
                grantID: grant.id)
        }
        var reason = "no role or grant allows \(capability) on \(q.target)"
        if !unmet.isEmpty { reason += " (\(Set(unmet).sorted().joined(separator: "; ")))" }
        return AccessDecision(allowed: false, reason: reason)
    }
}
