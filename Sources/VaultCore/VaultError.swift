/// Every error a vault operation reports to its caller.
///
/// Each case's `description` says what is wrong; `hint` says what to do about it.
public enum VaultError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidModelName(String, reason: String)
    case invalidVersion(String)
    case invalidFilePath(String, reason: String)
    case notAVault(path: String)
    case vaultExists(path: String)
    case sealed
    case unknownModel(String)
    case unknownVersion(String, Int)
    case noVersions(String)
    case inputMissing(path: String)
    case inputNotAFile(path: String)
    case duplicateFileName(String)
    case outputExists(path: String)
    case corrupt(file: String, detail: String)
    case integrity(file: String, detail: String)
    /// A model file that cannot be parsed, so no fingerprint can go into it.
    case unmarkable(file: String, detail: String)
    case retiredKey(file: String, version: UInt32)
    case unknownKey(version: UInt32)
    case io(path: String, detail: String)
    case noSpace(path: String)
    case keyService(String)
    case invalidArgument(String)
    case userExists(String)
    case unknownUser(String)
    case roleExists(String)
    case unknownRole(String)
    case unknownGrant(String)
    case unknownToken(String)
    case unknownCertificate(String)
    /// The request contradicts the current state (e.g. deleting a role still in use).
    case conflict(String, hint: String?)

    /// Names come from files and requests: shown escaped, never raw, on a terminal.
    private func shown(_ name: String) -> String { ModelFilePath.displayed(name) }

    public var description: String {
        switch self {
        case .invalidModelName(let name, let reason): "invalid model name '\(name)': \(reason)"
        case .invalidVersion(let text): "invalid version '\(text)': expected a positive integer"
        case .invalidFilePath(let path, let reason): "invalid file name '\(shown(path))': \(reason)"
        case .notAVault(let path): "\(path) is not a ModelVault vault"
        case .vaultExists(let path): "\(path) already holds a vault"
        case .sealed: "the vault is sealed"
        case .unknownModel(let name): "no model named \(name)"
        case .unknownVersion(let name, let number): "model \(name) has no version \(number)"
        case .noVersions(let name): "model \(name) has no versions"
        case .unmarkable(let file, let detail):
            "\(shown(file)) cannot be fingerprinted, so it is not served to this account: \(detail)"
        case .inputMissing(let path): "\(shown(path)): no such file"
        case .inputNotAFile(let path): "\(shown(path)) is not a regular file"
        case .duplicateFileName(let name): "two input files are both named \(shown(name))"
        case .outputExists(let path): "\(shown(path)) already exists"
        case .corrupt(let file, let detail): "\(shown(file)) is corrupt: \(detail)"
        case .integrity(let file, let detail): "\(shown(file)) failed its integrity check: \(detail)"
        case .retiredKey(let file, let version):
            "\(shown(file)) is wrapped under retired key version \(version)"
        case .unknownKey(let version): "key version \(version) is not in this vault's keyring"
        case .io(let path, let detail): "\(shown(path)): \(detail)"
        case .noSpace(let path): "no space left on the device holding \(path)"
        case .keyService(let detail): detail
        case .invalidArgument(let detail): detail
        case .userExists(let name): "a user named \(name) already exists"
        case .unknownUser(let name): "no user named \(name)"
        case .roleExists(let name): "a role named \(name) already exists"
        case .unknownRole(let name): "no role named \(name)"
        case .unknownGrant(let id): "no grant with id \(id)"
        case .unknownToken(let id): "no token with id \(id)"
        case .unknownCertificate(let serial): "no certificate with serial \(serial)"
        case .conflict(let detail, _): detail
        }
    }

    /// Whether the error means "no such thing" (HTTP 404).
    public var isNotFound: Bool {
        switch self {
        case .unknownModel, .unknownVersion, .noVersions, .unknownUser, .unknownRole, .unknownGrant, .unknownToken,
            .unknownCertificate:
            true
        default: false
        }
    }

    /// What the user can do about it, when there is something to say.
    public var hint: String? {
        switch self {
        case .invalidModelName: "model names look like acme/llama-7b"
        case .notAVault:
            "create one with `mvault init DIR` or pass --vault DIR; or, for a server, log in with `mvault login --addr https://HOST:PORT`"
        case .vaultExists: "choose an empty directory, or use the existing vault"
        case .sealed: "unseal it with `mvault unseal` (run it once per share, or once with the passphrase)"
        case .unknownModel, .noVersions: "list models with `mvault ls`"
        case .unknownVersion: "list its versions with `mvault show NAME`"
        case .outputExists: "pass --force to overwrite it"
        case .retiredKey: "run `mvault key rewrap` to move it to the newest key version"
        case .noSpace: "free some space; nothing was changed"
        case .unknownRole: "list roles with `mvault role ls`"
        case .unknownGrant: "list grants with `mvault grant ls`"
        case .unknownToken: "list tokens with `mvault token ls`"
        case .conflict(_, let hint): hint
        case .unmarkable:
            "push a valid file in its place; an account with the push capability can pull the original with --unmarked"
        case .corrupt, .integrity:
            "the stored copy was modified or damaged; restore it from a backup"
        default: nil
        }
    }
}
