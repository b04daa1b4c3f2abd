/// Errors from the keyring and the unseal process. Each says what to do next.
public enum KeyringError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedShare(String)
    case foreignShare
    case duplicateShare
    case thresholdMismatch
    case unknownShare
    case wrongShares
    case wrongPassphrase
    case weakPassphrase
    case wrongSealType(expected: String)
    case retiredVersion(UInt32)
    case unknownVersion(UInt32)
    case foreignKey
    case corruptKeyring(String)
    case kdfFailed

    public var description: String {
        switch self {
        case .malformedShare(let why): "that is not a valid unseal share: \(why)"
        case .foreignShare: "that share belongs to a different vault"
        case .duplicateShare: "that share was already given; enter a different one"
        case .thresholdMismatch: "that share is from a different split of this vault's key"
        case .unknownShare: "that is not one of this vault's unseal shares; check it against the one you were given"
        case .wrongShares:
            "the shares given do not reconstruct this vault's unseal key; progress was reset, start again"
        case .wrongPassphrase: "wrong passphrase"
        case .weakPassphrase: "a passphrase must be at least 12 characters"
        case .wrongSealType(let expected): "this vault is unsealed with \(expected)"
        case .retiredVersion(let version): "key version \(version) is retired"
        case .unknownVersion(let version): "key version \(version) is not in this keyring"
        case .foreignKey: "the file was sealed by a different vault's keyring"
        case .corruptKeyring(let why): "the keyring file is damaged: \(why)"
        case .kdfFailed: "Argon2id failed (out of memory?)"
        }
    }
}
