import Crypto
import Foundation

/// Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP).
///
/// Defaults are what authenticator apps use: HMAC-SHA-1, 30-second steps, 6 digits. Validation
/// accepts one step of clock skew either way and never accepts a step at or before the last one
/// used, so a code cannot be replayed.
public struct TOTP: Sendable {
    public enum Algorithm: String, Sendable, Codable {
        case sha1 = "SHA1"
        case sha256 = "SHA256"
        case sha512 = "SHA512"
    }

    public let secret: [UInt8]
    public let algorithm: Algorithm
    public let digits: Int
    public let period: Int64

    public init(secret: [UInt8], algorithm: Algorithm = .sha1, digits: Int = 6, period: Int64 = 30) {
        precondition((6...8).contains(digits) && period > 0)
        self.secret = secret
        self.algorithm = algorithm
        self.digits = digits
        self.period = period
    }

    /// 20 random bytes (160 bits, RFC 4226's recommendation for SHA-1).
    public static func generateSecret() -> [UInt8] {
        var bytes = [UInt8]()
        SymmetricKey(size: .bits256).withUnsafeBytes { bytes = Array($0.prefix(20)) }
        return bytes
    }

    public func step(at date: Date) -> Int64 { Int64(floor(date.timeIntervalSince1970)) / period }

    public func code(at date: Date) -> String { code(forStep: step(at: date)) }

    public func code(forStep step: Int64) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Array($0) }
        let key = SymmetricKey(data: secret)
        let mac: [UInt8] =
            switch algorithm {
            case .sha1: Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: key))
            case .sha256: Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
            case .sha512: Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
            }
        // RFC 4226 §5.3 dynamic truncation.
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let binary =
            (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8)
            | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: digits - value.count) + value
    }

    /// The step `code` belongs to, if it is valid at `date` (±1 step) and later than `lastUsedStep`.
    /// Every candidate is compared, in constant time, whatever matches first.
    public func validate(_ code: String, at date: Date, lastUsedStep: Int64?) -> Int64? {
        let now = step(at: date)
        var matched: Int64?
        for candidate in (now - 1)...(now + 1) {
            if constantTimeEqual(self.code(forStep: candidate), code), candidate > (lastUsedStep ?? Int64.min) {
                matched = candidate
            }
        }
        return matched
    }

    /// The otpauth:// URI authenticator apps read (from a QR code or pasted).
    public func provisioningURI(account: String, issuer: String = "ModelVault") -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let label = "\(issuer):\(account)".addingPercentEncoding(withAllowedCharacters: allowed) ?? account
        let issuerParam = issuer.addingPercentEncoding(withAllowedCharacters: allowed) ?? issuer
        return
            "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(issuerParam)&algorithm=\(algorithm.rawValue)&digits=\(digits)&period=\(period)"
    }
}

/// Compares two strings without stopping at the first difference.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var difference: UInt8 = 0
    for i in x.indices { difference |= x[i] ^ y[i] }
    return difference == 0
}
