/// Why a credential was refused. Messages say what to change; none echo a secret.
public enum IdentityError: Error, Equatable, Sendable, CustomStringConvertible {
    case passwordTooShort(minimum: Int)
    case passwordTooCommon
    case passwordIsUsername
    case hashingFailed
    case malformedSecret

    public var description: String {
        switch self {
        case .passwordTooShort(let minimum): "a password must be at least \(minimum) characters"
        case .passwordTooCommon: "that password is one of the 10,000 most common; choose another"
        case .passwordIsUsername: "a password must not be the user name"
        case .hashingFailed: "password hashing failed (out of memory?)"
        case .malformedSecret: "malformed secret"
        }
    }
}
