import CSodium
import Crypto

/// A watermark key: 256 secret bits. The owner mark and every recipient code each have one.
public struct WatermarkKey: Hashable, Sendable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "a watermark key is 32 bytes")
        self.bytes = bytes
    }

    /// The key of the recipient code for `recipient` (an account or token) and a model version,
    /// derived from a vault secret.
    public static func recipient(secret: [UInt8], recipient: String, model: String, version: Int) -> WatermarkKey {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("mvault watermark v1 recipient\u{0}\(recipient)\u{0}\(model)\u{0}\(version)".utf8),
            using: SymmetricKey(data: secret))
        return WatermarkKey(bytes: Array(mac))
    }

    /// The owner mark's key for a model, derived from a vault secret.
    public static func owner(secret: [UInt8], model: String) -> WatermarkKey {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("mvault watermark v1 owner\u{0}\(model)".utf8), using: SymmetricKey(data: secret))
        return WatermarkKey(bytes: Array(mac))
    }
}

/// The ±1 chips of one key over one tensor role: for row `r`, the ChaCha20 (IETF) keystream
/// under K_role = HMAC-SHA256(key, "mvault watermark v1 role\0" ‖ role) with the 96-bit nonce
/// r (little-endian); chip j is +1 when bit j of that stream is set (bit j % 8 of byte j / 8).
/// Streams under the nonce with its last byte 0x01 and 0x02 drive the rounding decisions and
/// the choice of the quant codes a sparse mark moves.
public struct ChipSource: Sendable {
    let roleKey: [UInt8]

    public init(key: WatermarkKey, role: String) {
        _ = sodium_init()
        roleKey = Array(
            HMAC<SHA256>.authenticationCode(
                for: Array("mvault watermark v1 role\u{0}\(role)".utf8), using: SymmetricKey(data: key.bytes)))
    }

    /// The keystream of `row` for `purpose` (0: chips, 1: rounding), `count` bytes.
    func stream(row: Int, purpose: UInt8, count: Int) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: UInt64(row).littleEndian) { nonce.replaceSubrange(0..<8, with: $0) }
        nonce[11] = purpose
        var out = [UInt8](repeating: 0, count: count)
        _ = crypto_stream_chacha20_ietf(&out, UInt64(count), nonce, roleKey)
        return out
    }

    /// Chips of `row`, one per column, as +1 / −1.
    public func chips(row: Int, columns: Int) -> [Float] {
        let bits = stream(row: row, purpose: 0, count: (columns + 7) / 8)
        return [Float](unsafeUninitializedCapacity: columns) { out, initialized in
            Self.byteChips.withUnsafeBufferPointer { table in
                for j in 0..<columns { out[j] = table[Int(bits[j >> 3]) * 8 + (j & 7)] }
            }
            initialized = columns
        }
    }

    /// Adds the chips of `row` (±1 per column) to `sums`, eight columns per stream byte.
    func addChips(row: Int, into sums: UnsafeMutableBufferPointer<Float>) {
        let columns = sums.count
        let bits = stream(row: row, purpose: 0, count: (columns + 7) / 8)
        let raw = UnsafeMutableRawPointer(sums.baseAddress!)
        Self.byteChipVectors.withUnsafeBufferPointer { table in
            let whole = columns / 8
            for b in 0..<whole {
                let at = b * 32
                raw.storeBytes(
                    of: raw.loadUnaligned(fromByteOffset: at, as: SIMD8<Float>.self) + table[Int(bits[b])],
                    toByteOffset: at, as: SIMD8<Float>.self)
            }
        }
        for j in (columns / 8 * 8)..<columns { sums[j] += Self.byteChips[Int(bits[j >> 3]) * 8 + (j & 7)] }
    }

    static let byteChipVectors: [SIMD8<Float>] = (0..<256).map { b in
        SIMD8<Float>((0..<8).map { b >> $0 & 1 == 1 ? 1 : -1 })
    }

    /// The eight chips of every byte value, bit 0 first.
    static let byteChips: [Float] = (0..<256 * 8).map { i in (i >> 3) >> (i & 7) & 1 == 1 ? 1 : -1 }

    /// Uniform numbers in [0, 1) for the rounding decisions of `row`, one per column.
    public func uniforms(row: Int, columns: Int) -> [Float] { uniforms(row: row, columns: columns, purpose: 1) }

    /// The columns whose uniform (as `uniforms(row:columns:purpose:)` gives it) is below `limit`,
    /// with that uniform — without materialising the others.
    public func below(_ limit: Float, row: Int, columns: Int, purpose: UInt8) -> [(column: Int, uniform: Float)] {
        let bytes = stream(row: row, purpose: purpose, count: columns * 4)
        let threshold = UInt32(min(Float(1 << 24), (limit * 16_777_216).rounded(.up)))
        return bytes.withUnsafeBytes { raw in
            // First the passing columns' indices, without a branch (about one column in ten
            // passes, unpredictably): each index is written at the next free place, which only
            // advances when it passes. Then their uniforms.
            let passing = [Int32](unsafeUninitializedCapacity: columns + 1) { out, found in
                var next = 0
                for j in 0..<columns {
                    out[next] = Int32(truncatingIfNeeded: j)
                    next += raw.loadUnaligned(fromByteOffset: j * 4, as: UInt32.self) >> 8 < threshold ? 1 : 0
                }
                found = next
            }
            return passing.map { j in
                (Int(j), Float(raw.loadUnaligned(fromByteOffset: Int(j) * 4, as: UInt32.self) >> 8) / 16_777_216)
            }
        }
    }

    public func uniforms(row: Int, columns: Int, purpose: UInt8) -> [Float] {
        let bytes = stream(row: row, purpose: purpose, count: columns * 4)
        return bytes.withUnsafeBytes { raw in
            (0..<columns).map { j in Float(raw.loadUnaligned(fromByteOffset: j * 4, as: UInt32.self) >> 8) / 16_777_216
            }
        }
    }
}
