import SealedFormat

/// Shamir's secret sharing over GF(2⁸), byte by byte, as in HashiCorp Vault's `shamir` package.
///
/// - Important: shares are unauthenticated points; a forged share yields a wrong secret, which the
///   caller detects when the reconstructed key fails to open the keyring.
public enum Shamir {
    /// One point of the polynomials: `x` in 1…255, `y` one byte per secret byte.
    public struct Point: Hashable, Sendable {
        public let x: UInt8
        public let y: [UInt8]
        public init(x: UInt8, y: [UInt8]) {
            self.x = x
            self.y = y
        }
    }

    /// Splits `secret` into `shares` points, any `threshold` of which reconstruct it.
    public static func split(_ secret: [UInt8], shares: Int, threshold: Int) -> [Point] {
        precondition(threshold >= 2 && threshold <= shares && shares <= 255 && !secret.isEmpty)
        // coefficients[byte][k] for k in 1..<threshold; k = 0 is the secret byte.
        let coefficients = secret.map { _ in SecureRandom.bytes(threshold - 1) }
        return (1...shares).map { index in
            let x = UInt8(index)
            let y = secret.indices.map { i in
                evaluate(constant: secret[i], coefficients: coefficients[i], at: x)
            }
            return Point(x: x, y: y)
        }
    }

    /// Interpolates the secret at x = 0 from `points` (distinct x, equal lengths).
    public static func combine(_ points: [Point]) -> [UInt8] {
        interpolate(points, at: 0)
    }

    /// The polynomials through `points` (distinct x, equal lengths), evaluated at `x`: at 0 the
    /// secret, at another x the share that x names.
    public static func interpolate(_ points: [Point], at x: UInt8) -> [UInt8] {
        precondition(points.count >= 2)
        let length = points[0].y.count
        var secret = [UInt8](repeating: 0, count: length)
        for (i, point) in points.enumerated() {
            // Lagrange basis at x: Π_{j≠i} (x − x_j) / (x_i − x_j); subtraction is XOR here.
            var basis: UInt8 = 1
            for (j, other) in points.enumerated() where j != i {
                basis = GF256.multiply(
                    basis, GF256.multiply(x ^ other.x, GF256.inverse(other.x ^ point.x)))
            }
            for k in 0..<length {
                secret[k] ^= GF256.multiply(point.y[k], basis)
            }
        }
        return secret
    }

    static func evaluate(constant: UInt8, coefficients: [UInt8], at x: UInt8) -> UInt8 {
        // Horner's rule from the highest coefficient down.
        var result: UInt8 = 0
        for coefficient in coefficients.reversed() {
            result = GF256.multiply(result, x) ^ coefficient
        }
        return GF256.multiply(result, x) ^ constant
    }
}
