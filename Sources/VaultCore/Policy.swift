/// What a caller may do to a model.
public enum Capability: String, CaseIterable, Sendable, Codable, Comparable {
    case list, read, pull, push, delete, grant, admin

    public static func < (a: Capability, b: Capability) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The outcome of one authorization question, with the rule that decided it.
public struct AccessDecision: Sendable, Equatable {
    public var allowed: Bool
    /// e.g. "role consumer allows pull on *", or "no role or grant allows push on acme/x".
    public var reason: String
}

/// The single policy decision point. Deny by default: a request is allowed only when one of the
/// caller's roles grants the capability on the model.
///
/// Built-in roles (on every model): admin — everything; publisher — list, read, pull, push;
/// consumer — list, read, pull; auditor — list, read.
public struct Policy: Sendable {
    public static let builtInRoles: [String: Set<Capability>] = [
        "admin": Set(Capability.allCases),
        "publisher": [.list, .read, .pull, .push],
        "consumer": [.list, .read, .pull],
        "auditor": [.list, .read],
    ]

    public init() {}

    /// - Parameter model: the model the request is about, or nil for vault-wide requests.
    public func decide(roles: [String], capability: Capability, model: String?) -> AccessDecision {
        let target = model ?? "the vault"
        for role in roles.sorted() {
            if let granted = Self.builtInRoles[role], granted.contains(capability) {
                return AccessDecision(allowed: true, reason: "role \(role) allows \(capability.rawValue) on *")
            }
        }
        return AccessDecision(allowed: false, reason: "no role or grant allows \(capability.rawValue) on \(target)")
    }
}
