import Foundation
import ModelFormats

/// Keyed spread-spectrum marks in weight space (docs/watermark.md): each row r of a marked
/// matrix moves by w' = w + α·σ_r·c, where c are the key's ±1 chips for the tensor's role and
/// σ_r the row's standard deviation; detection needs only the key.
public enum Watermarking {
    /// Default α, relative to each row's standard deviation.
    public static let defaultStrength: Float = 0.004

    /// Whether `tensor` carries marks: a matrix (not a norm or bias) stored as F32, F16 or BF16.
    public static func isMarkable(_ tensor: TensorLayout) -> Bool {
        tensor.shape.count == 2 && tensor.rowLength >= 16 && tensor.rowCount >= 1 && FloatCodec(tensor.encoding) != nil
    }

    /// Copies a model file from `source` to `sink`, marking every markable tensor with each of
    /// `keys` in turn; everything else comes out byte for byte.
    public static func embed(
        _ source: some ByteSource, tensors: [TensorLayout], keys: [WatermarkKey], strength: Float = defaultStrength,
        sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var chipSources: [String: [ChipSource]] = [:]
        try ModelRewriter.rewrite(
            source, tensors: tensors, select: isMarkable,
            transform: { tensor, firstRow, rows in
                let codec = FloatCodec(tensor.encoding)!
                let role = TensorRole.of(tensor.name)
                let sources = chipSources[role] ?? keys.map { ChipSource(key: $0, role: role) }
                chipSources[role] = sources
                let n = tensor.rowLength
                for r in 0..<(rows.count / (n * codec.width)) {
                    let row = UnsafeMutableRawBufferPointer(
                        rebasing: rows[(r * n * codec.width)..<((r + 1) * n * codec.width)])
                    var w = (0..<n).map { codec.load(row, $0) }
                    let sigma = RowStatistics(w).deviation
                    guard sigma > 0, sigma.isFinite else { continue }
                    for chips in sources {
                        let c = chips.chips(row: firstRow + r, columns: n)
                        let u = chips.uniforms(row: firstRow + r, columns: n)
                        for j in 0..<n { w[j] = codec.nudge(w[j], by: strength * sigma * c[j], uniform: u[j]) }
                    }
                    for j in 0..<n { codec.store(row, j, w[j]) }
                }
            }, sink: sink)
    }

    /// Blind detection of `key` in a model file: the per-row normalised correlations of every
    /// markable tensor, summed into one z-score.
    public static func detect(_ source: some ByteSource, tensors: [TensorLayout], key: WatermarkKey) throws -> Detection
    {
        var detection = Detection()
        for tensor in tensors where isMarkable(tensor) {
            let codec = FloatCodec(tensor.encoding)!
            let chips = ChipSource(key: key, role: TensorRole.of(tensor.name))
            let n = tensor.rowLength
            let rowBytes = n * codec.width
            let rowsPerRead = max(1, (4 << 20) / rowBytes)
            var buffer = [UInt8](repeating: 0, count: rowsPerRead * rowBytes)
            var row = 0
            while row < tensor.rowCount {
                let count = min(rowsPerRead, tensor.rowCount - row)
                try buffer.withUnsafeMutableBytes { raw in
                    let piece = UnsafeMutableRawBufferPointer(rebasing: raw[0..<(count * rowBytes)])
                    try source.read(at: tensor.bytes.lowerBound + UInt64(row * rowBytes), into: piece)
                    for r in 0..<count {
                        let slice = UnsafeMutableRawBufferPointer(
                            rebasing: piece[(r * rowBytes)..<((r + 1) * rowBytes)])
                        let w = (0..<n).map { codec.load(slice, $0) }
                        detection.add(row: w, chips: chips.chips(row: row + r, columns: n))
                    }
                }
                row += count
            }
        }
        return detection
    }
}

/// The outcome of testing one key.
public struct Detection: Sendable, Equatable {
    /// Σ of per-row normalised correlations.
    public var correlationSum: Double = 0
    public var rows = 0
    public var weights = 0

    /// ≈ N(0, 1) when the key's mark is absent; ≈ α·√(marked weights) when present.
    public var z: Double { rows == 0 ? 0 : correlationSum / Double(rows).squareRoot() }
    /// A distribution-free bound on the probability of a z this high without the mark.
    public var falsePositiveBound: Double { z <= 0 ? 1 : exp(-z * z / 2) }

    /// Adds one row: ρ = Σ c_j (w_j − mean) / (σ √n).
    mutating func add(row w: [Float], chips c: [Float]) {
        let n = Double(w.count)
        var sum = 0.0
        var squares = 0.0
        var correlated = 0.0
        var chipSum = 0.0
        for j in 0..<w.count {
            let x = Double(w[j])
            sum += x
            squares += x * x
            correlated += Double(c[j]) * x
            chipSum += Double(c[j])
        }
        let mean = sum / n
        let variance = squares / n - mean * mean
        guard variance > 0, variance.isFinite else { return }
        correlationSum += (correlated - mean * chipSum) / (variance.squareRoot() * n.squareRoot())
        rows += 1
        weights += w.count
    }
}

struct RowStatistics {
    var deviation: Float
    init(_ w: [Float]) {
        let n = Double(w.count)
        let mean = w.reduce(0.0) { $0 + Double($1) } / n
        let variance = w.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        deviation = Float(variance.squareRoot())
    }
}

/// Reads and writes the float storage types marks go into, and moves a value by δ on that
/// type's grid: rounded when δ reaches half a step, otherwise one step in δ's direction with
/// probability |δ| / step (so the expected change is δ even where δ is far below one step, as
/// it is in BF16).
enum FloatCodec {
    case f32, f16, bf16

    init?(_ encoding: TensorEncoding) {
        switch encoding {
        case .safetensors(.f32), .ggml(.f32): self = .f32
        case .safetensors(.f16), .ggml(.f16): self = .f16
        case .safetensors(.bf16), .ggml(.bf16): self = .bf16
        default: return nil
        }
    }

    var width: Int { self == .f32 ? 4 : 2 }

    func load(_ raw: UnsafeMutableRawBufferPointer, _ j: Int) -> Float {
        switch self {
        case .f32: Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self)))
        case .f16: Dequantize.f16(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
        case .bf16: Dequantize.bf16(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
        }
    }

    func store(_ raw: UnsafeMutableRawBufferPointer, _ j: Int, _ value: Float) {
        switch self {
        case .f32: raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: 4 * j, as: UInt32.self)
        case .f16: raw.storeBytes(of: Float16(value).bitPattern.littleEndian, toByteOffset: 2 * j, as: UInt16.self)
        case .bf16: raw.storeBytes(of: Self.bf16Bits(value).littleEndian, toByteOffset: 2 * j, as: UInt16.self)
        }
    }

    /// Round to nearest even, as PyTorch converts.
    static func bf16Bits(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7FC0 }
        let bits = x.bitPattern
        return UInt16((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
    }

    /// `x` rounded to this type.
    func rounded(_ x: Float) -> Float {
        switch self {
        case .f32: x
        case .f16: Float(Float16(x))
        case .bf16: Dequantize.bf16(Self.bf16Bits(x))
        }
    }

    /// The neighbour of `x` (already on the grid) one step toward `direction`.
    func step(_ x: Float, toward direction: Float) -> Float {
        switch self {
        case .f32: return direction > 0 ? x.nextUp : x.nextDown
        case .f16: return Float(direction > 0 ? Float16(x).nextUp : Float16(x).nextDown)
        case .bf16:
            let bits = Self.bf16Bits(x)
            let magnitudeUp = (x >= 0) == (direction > 0)
            if x == 0 { return Dequantize.bf16(direction > 0 ? 0x0001 : 0x8001) }
            return Dequantize.bf16(magnitudeUp ? bits &+ 1 : bits &- 1)
        }
    }

    func nudge(_ x: Float, by delta: Float, uniform: Float) -> Float {
        guard delta != 0, x.isFinite else { return x }
        let r = rounded(x + delta)
        if r != x { return r }
        let next = step(x, toward: delta)
        guard next.isFinite else { return x }
        return uniform < abs(delta) / abs(next - x) ? next : x
    }
}
