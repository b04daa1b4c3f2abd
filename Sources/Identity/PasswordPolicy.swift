import Foundation

/// At least 12 characters, not the user name, not one of the 10,000 most common passwords.
public struct PasswordPolicy: Sendable {
    public let minimumLength: Int
    let common: Set<String>

    /// The policy with the bundled list (Sources/Identity/common-passwords.txt).
    public static let standard = PasswordPolicy(minimumLength: 12, common: loadCommonPasswords())

    public init(minimumLength: Int, common: Set<String>) {
        self.minimumLength = minimumLength
        self.common = common
    }

    public var commonPasswordCount: Int { common.count }

    public func check(_ password: String, username: String) throws(IdentityError) {
        guard password.count >= minimumLength else { throw .passwordTooShort(minimum: minimumLength) }
        guard password.lowercased() != username.lowercased() else { throw .passwordIsUsername }
        guard !common.contains(password.lowercased()) else { throw .passwordTooCommon }
    }

    static func loadCommonPasswords() -> Set<String> {
        guard let url = Bundle.module.url(forResource: "common-passwords", withExtension: "txt"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return [] }
        return Set(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { String($0) })
    }
}
