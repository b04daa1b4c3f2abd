import Crypto
import Foundation

/// Small secrets kept in the database (TOTP seeds) sealed with AES-256-GCM under a vault key:
/// base64 of nonce ‖ ciphertext ‖ tag.
public enum SealedSecret {
    public static func seal(_ secret: [UInt8], key: [UInt8]) throws -> String {
        try AES.GCM.seal(secret, using: SymmetricKey(data: key)).combined!.base64EncodedString()
    }

    public static func open(_ sealed: String, key: [UInt8]) throws -> [UInt8] {
        guard let data = Data(base64Encoded: sealed) else { throw IdentityError.malformedSecret }
        return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: data), using: SymmetricKey(data: key)))
    }
}
