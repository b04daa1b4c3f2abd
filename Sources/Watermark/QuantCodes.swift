import ModelFormats

/// The quant codes of one ggml block type, one element at a time: where element `e` of a row
/// keeps its code, the code's range, and how much one code step moves its value. Marks in GGUF
/// files change codes by ±1 here, without re-quantizing anything.
struct QuantCodes {
    let type: GGMLType

    init?(_ encoding: TensorEncoding) {
        guard case .ggml(let type) = encoding, [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q6_K].contains(type)
        else { return nil }
        self.type = type
    }

    /// The largest code (the smallest is 0, except Q8_0's signed codes from −127).
    var range: ClosedRange<Int> {
        switch type {
        case .q8_0: -127...127
        case .q4_0, .q4_1, .q4_K: 0...15
        case .q5_0, .q5_1: 0...31
        default: 0...63  // Q6_K
        }
    }

    static func half(_ raw: UnsafeMutableRawBufferPointer, _ at: Int) -> Float {
        Dequantize.f16(UInt16(raw[at]) | UInt16(raw[at + 1]) << 8)
    }

    /// The signed change of element `e`'s value when its code grows by one.
    func step(_ raw: UnsafeMutableRawBufferPointer, _ e: Int) -> Float {
        let block = e / type.blockSize * type.typeSize
        switch type {
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1: return Self.half(raw, block)
        case .q4_K:
            let sub = (e % 256) / 32
            let scales = (0..<12).map { raw[block + 4 + $0] }
            return Self.half(raw, block) * Float(Dequantize.scaleMinK4(sub, scales).0)
        default:  // Q6_K
            let k = e % 256
            let (half, quarter, l) = (k / 128, (k % 128) / 32, k % 32)
            let scale = Int8(bitPattern: raw[block + 192 + half * 8 + l / 16 + 2 * quarter])
            return Self.half(raw, block + 208) * Float(scale)
        }
    }

    /// Byte and bit position of the low part of element `e`'s code (a nibble, or Q8_0's byte).
    func code(_ raw: UnsafeMutableRawBufferPointer, _ e: Int) -> Int {
        let (block, i) = (e / type.blockSize * type.typeSize, e % type.blockSize)
        switch type {
        case .q8_0: return Int(Int8(bitPattern: raw[block + 2 + i]))
        case .q4_0, .q4_1:
            let at = block + (type == .q4_0 ? 2 : 4) + i % 16
            return Int(i < 16 ? raw[at] & 0x0F : raw[at] >> 4)
        case .q5_0, .q5_1:
            let qh = type == .q5_0 ? block + 2 : block + 4
            let at = qh + 4 + i % 16
            let low = Int(i < 16 ? raw[at] & 0x0F : raw[at] >> 4)
            return low | Int((raw[qh + i / 8] >> (i % 8)) & 1) << 4
        case .q4_K:
            let (pair, within) = (i / 64, i % 64)
            let at = block + 16 + pair * 32 + within % 32
            return Int(within < 32 ? raw[at] & 0x0F : raw[at] >> 4)
        default:  // Q6_K
            let (half, quarter, l) = (i / 128, (i % 128) / 32, i % 32)
            let at = block + half * 64 + l + (quarter % 2) * 32
            let low = Int(quarter < 2 ? raw[at] & 0x0F : raw[at] >> 4)
            let high = Int((raw[block + 128 + half * 32 + l] >> (2 * quarter)) & 3)
            return low | high << 4
        }
    }

    func setCode(_ raw: UnsafeMutableRawBufferPointer, _ e: Int, _ value: Int) {
        let (block, i) = (e / type.blockSize * type.typeSize, e % type.blockSize)
        func setNibble(_ at: Int, high: Bool, _ v: Int) {
            raw[at] = high ? (raw[at] & 0x0F) | UInt8(v & 0x0F) << 4 : (raw[at] & 0xF0) | UInt8(v & 0x0F)
        }
        switch type {
        case .q8_0: raw[block + 2 + i] = UInt8(bitPattern: Int8(value))
        case .q4_0, .q4_1: setNibble(block + (type == .q4_0 ? 2 : 4) + i % 16, high: i >= 16, value)
        case .q5_0, .q5_1:
            let qh = type == .q5_0 ? block + 2 : block + 4
            setNibble(qh + 4 + i % 16, high: i >= 16, value)
            let bit = UInt8(1) << (i % 8)
            raw[qh + i / 8] = value & 0x10 != 0 ? raw[qh + i / 8] | bit : raw[qh + i / 8] & ~bit
        case .q4_K:
            let (pair, within) = (i / 64, i % 64)
            setNibble(block + 16 + pair * 32 + within % 32, high: within >= 32, value)
        default:  // Q6_K
            let (half, quarter, l) = (i / 128, (i % 128) / 32, i % 32)
            setNibble(block + half * 64 + l + (quarter % 2) * 32, high: quarter >= 2, value)
            let at = block + 128 + half * 32 + l
            let shift = UInt8(2 * quarter)
            raw[at] = (raw[at] & ~(3 << shift)) | UInt8((value >> 4) & 3) << shift
        }
    }

    /// Moves element `e` one code step so its value goes the way `direction` says (the other
    /// way when the code is at the end of its range). Returns the signed change of the value.
    @discardableResult
    func nudge(_ raw: UnsafeMutableRawBufferPointer, _ e: Int, toward direction: Float) -> Float {
        let step = self.step(raw, e)
        guard step != 0, step.isFinite else { return 0 }
        var delta = (direction > 0) == (step > 0) ? 1 : -1
        let current = code(raw, e)
        if !range.contains(current + delta) { delta = -delta }
        setCode(raw, e, current + delta)
        return Float(delta) * step
    }
}
