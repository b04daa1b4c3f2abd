/// Converts stored elements to `Float`: plain floats of both formats, and the ggml block
/// quantizations F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K, following
/// ggml's reference dequantization (`ggml-quants.c`).
public enum Dequantize {
    /// Whether `encoding` can be read as floats.
    public static func supports(_ encoding: TensorEncoding) -> Bool {
        switch encoding {
        case .safetensors(let t): [.f32, .f16, .bf16, .f64].contains(t)
        case .ggml(let t): [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q6_K].contains(t)
        }
    }

    /// The elements stored in `bytes` (whole blocks), appended to `out`.
    public static func append(
        _ bytes: UnsafeRawBufferPointer, as encoding: TensorEncoding, to out: inout [Float]
    ) throws {
        switch encoding {
        case .safetensors(.f32), .ggml(.f32): floats(bytes, UInt32.self, &out) { Float(bitPattern: $0) }
        case .safetensors(.f16), .ggml(.f16):
            f16Table.withUnsafeBufferPointer { table in floats(bytes, UInt16.self, &out) { table[Int($0)] } }
        case .safetensors(.bf16), .ggml(.bf16): floats(bytes, UInt16.self, &out) { bf16($0) }
        case .safetensors(.f64): floats(bytes, UInt64.self, &out) { Float(Double(bitPattern: $0)) }
        case .ggml(let type) where supports(encoding):
            guard bytes.count % type.typeSize == 0 else {
                throw ModelFormatError.invalidHeader("\(bytes.count) bytes are not whole \(type) blocks")
            }
            out.reserveCapacity(out.count + bytes.count / type.typeSize * type.blockSize)
            var at = 0
            while at < bytes.count {
                block(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + type.typeSize)]), type, &out)
                at += type.typeSize
            }
        default:
            throw ModelFormatError.unsupported("reading \(encoding) tensors as numbers")
        }
    }

    public static func f16(_ bits: UInt16) -> Float { f16Table[Int(bits)] }

    /// Every half-precision value as a float: without F16C, `Float(Float16)` is a library call that
    /// took a third of a detection's time; a 256 KiB table is several times faster.
    static let f16Table: [Float] = (0...0xFFFF).map { Float(Float16(bitPattern: UInt16($0))) }
    public static func bf16(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    @inline(__always)
    static func floats<Bits: FixedWidthInteger>(
        _ bytes: UnsafeRawBufferPointer, _: Bits.Type, _ out: inout [Float], _ convert: (Bits) -> Float
    ) {
        let width = MemoryLayout<Bits>.size
        let count = bytes.count / width
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: count))
        out.withUnsafeMutableBufferPointer { out in
            for i in 0..<count {
                out[start + i] = convert(
                    Bits(littleEndian: bytes.loadUnaligned(fromByteOffset: i * width, as: Bits.self)))
            }
        }
    }

    static func block(_ b: UnsafeRawBufferPointer, _ type: GGMLType, _ y: inout [Float]) {
        let d = f16(b.loadLE(UInt16.self))
        switch type {
        case .q8_0:
            for j in 0..<32 { y.append(d * Float(Int8(bitPattern: b[2 + j]))) }
        case .q4_0:
            for j in 0..<16 { y.append(d * Float(Int(b[2 + j] & 0x0F) - 8)) }
            for j in 0..<16 { y.append(d * Float(Int(b[2 + j] >> 4) - 8)) }
        case .q4_1:
            let m = f16(UnsafeRawBufferPointer(rebasing: b[2...]).loadLE(UInt16.self))
            for j in 0..<16 { y.append(d * Float(b[4 + j] & 0x0F) + m) }
            for j in 0..<16 { y.append(d * Float(b[4 + j] >> 4) + m) }
        case .q5_0:
            let qh = UnsafeRawBufferPointer(rebasing: b[2...]).loadLE(UInt32.self)
            for j in 0..<16 {
                let h = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                y.append(d * Float(Int((b[6 + j] & 0x0F) | h) - 16))
            }
            for j in 0..<16 {
                let h = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                y.append(d * Float(Int((b[6 + j] >> 4) | h) - 16))
            }
        case .q5_1:
            let m = f16(UnsafeRawBufferPointer(rebasing: b[2...]).loadLE(UInt16.self))
            let qh = UnsafeRawBufferPointer(rebasing: b[4...]).loadLE(UInt32.self)
            for j in 0..<16 {
                let h = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                y.append(d * Float((b[8 + j] & 0x0F) | h) + m)
            }
            for j in 0..<16 {
                let h = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                y.append(d * Float((b[8 + j] >> 4) | h) + m)
            }
        case .q4_K:
            // d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes of 4-bit quants.
            let dmin = f16(UnsafeRawBufferPointer(rebasing: b[2...]).loadLE(UInt16.self))
            let scales = Array(b[4..<16])
            var q = 16
            for pair in 0..<4 {
                let (s1, m1) = scaleMinK4(2 * pair, scales)
                let (s2, m2) = scaleMinK4(2 * pair + 1, scales)
                for l in 0..<32 { y.append(d * Float(s1) * Float(b[q + l] & 0x0F) - dmin * Float(m1)) }
                for l in 0..<32 { y.append(d * Float(s2) * Float(b[q + l] >> 4) - dmin * Float(m2)) }
                q += 32
            }
        case .q6_K:
            // 128 bytes of low 4 bits, 64 of high 2 bits, 16 int8 scales, then d.
            let d = f16(UnsafeRawBufferPointer(rebasing: b[208...]).loadLE(UInt16.self))
            var values = [Float](repeating: 0, count: 256)
            for half in 0..<2 {
                let ql = half * 64
                let qh = 128 + half * 32
                let sc = 192 + half * 8
                for l in 0..<32 {
                    let s = l / 16
                    let q1 = Int((b[ql + l] & 0x0F) | ((b[qh + l] >> 0) & 3) << 4) - 32
                    let q2 = Int((b[ql + l + 32] & 0x0F) | ((b[qh + l] >> 2) & 3) << 4) - 32
                    let q3 = Int((b[ql + l] >> 4) | ((b[qh + l] >> 4) & 3) << 4) - 32
                    let q4 = Int((b[ql + l + 32] >> 4) | ((b[qh + l] >> 6) & 3) << 4) - 32
                    let base = half * 128
                    values[base + l] = d * Float(Int8(bitPattern: b[sc + s])) * Float(q1)
                    values[base + l + 32] = d * Float(Int8(bitPattern: b[sc + s + 2])) * Float(q2)
                    values[base + l + 64] = d * Float(Int8(bitPattern: b[sc + s + 4])) * Float(q3)
                    values[base + l + 96] = d * Float(Int8(bitPattern: b[sc + s + 6])) * Float(q4)
                }
            }
            y += values
        default:
            preconditionFailure("unsupported block type \(type)")
        }
    }

    /// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` of a Q4_K block.
    public static func scaleMinK4(_ j: Int, _ q: [UInt8]) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

extension UnsafeRawBufferPointer {
    func loadLE<T: FixedWidthInteger>(_: T.Type) -> T { T(littleEndian: loadUnaligned(as: T.self)) }
}
