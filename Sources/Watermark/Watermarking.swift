import CHalf
import Foundation
import ModelFormats
import Synchronization

/// Keyed spread-spectrum marks in weight space (docs/watermark.md): each row r of a marked
/// matrix moves by w' = w + α·σ_r·c, where c are the key's ±1 chips for the tensor's role and
/// σ_r the row's standard deviation; detection needs only the key.
public enum Watermarking {
    /// Default α, relative to each row's standard deviation.
    public static let defaultStrength: Float = 0.0037
    /// The typical size of one code step of a ggml type, in units of the weights' standard
    /// deviation, for Gaussian weights: the block's absolute maximum (≈ 2.1 σ for 32 weights)
    /// over the type's levels.
    static func typicalStep(_ type: GGMLType) -> Float {
        switch type {
        case .q8_0: 0.018
        case .q6_K: 0.07
        case .q5_0, .q5_1: 0.14
        default: 0.28  // Q4_0, Q4_1, Q4_K
        }
    }

    /// The share of a quantized matrix's codes a sparse mark of strength α moves by one step:
    /// (α / step)², which gives the same z and the same added mean-square error as a dense mark
    /// of strength α in a float matrix (z ≈ α·√N). Q4_1 at the default α: 0.02 % of codes.
    public static func sparseFraction(_ type: GGMLType, strength: Float) -> Float {
        min(1, (strength / typicalStep(type)) * (strength / typicalStep(type)))
    }

    /// The fractions detection tries (one per step size class), since a suspect copy may have
    /// been converted from a quantized original of any type.
    static func sparseFractions(strength: Float) -> [Float] {
        [GGMLType.q8_0, .q6_K, .q5_0, .q4_0].map { sparseFraction($0, strength: strength) }
    }

    /// Whether `tensor` carries marks: a matrix (not a norm or bias) stored as F32, F16 or BF16,
    /// or quantized as Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K or Q6_K, that multiplies activations —
    /// not an embedding table, whose rows are looked up (most rarely), and which llama.cpp keeps
    /// in Q8_0 or F16 where a sparse mark would move many more codes than in the layers.
    public static func isMarkable(_ tensor: TensorLayout) -> Bool {
        tensor.shape.count == 2 && tensor.rowLength >= 16 && tensor.rowCount >= 1
            && (FloatCodec(tensor.encoding) != nil || QuantCodes(tensor.encoding) != nil)
            && !embeddingRoles.contains(TensorRole.of(tensor.name))
    }

    static let embeddingRoles: Set = ["token_embd", "position_embd", "token_types"]

    /// Copies a model file from `source` to `sink`, marking every markable tensor with each of
    /// `keys` in turn; everything else comes out byte for byte.
    public static func embed(
        _ source: some ByteSource, tensors: [TensorLayout], keys: [WatermarkKey], strength: Float = defaultStrength,
        rowOrder: RowOrder = .identity, sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let marker = Marker(keys: keys, strength: strength, rowOrder: rowOrder)
        try ModelRewriter.rewrite(
            source, tensors: tensors, select: isMarkable,
            transform: { tensor, firstRow, rows in marker.mark(tensor, firstRow: firstRow, rows: rows) }, sink: sink)
    }

    /// Blind detection of `key` in a model file. Every markable matrix, whatever its type, is
    /// read back to floats and tested both ways a mark can be there: dense (every weight, as
    /// float files are marked) and sparse (the keyed selection quantized files are marked in).
    public static func detect(
        _ source: some ByteSource, tensors: [TensorLayout], key: WatermarkKey, strength: Float = defaultStrength,
        rowOrder: RowOrder = .identity
    ) throws -> DetectionReport {
        let fractions = sparseFractions(strength: strength)
        let empty = DetectionReport(sparse: fractions.map { SparseDetection(fraction: $0) })
        let markable = tensors.filter(isMarkable)
        // Matrices are independent: both cores take turns at them.
        let workers = min(max(1, markable.count), 2)
        let results = Mutex<[Result<DetectionReport, any Error>]>([])
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var report = empty
            let outcome = Result {
                for tensor in markable.enumerated().filter({ $0.offset % workers == worker }).map(\.element) {
                    try detect(source, tensor, key: key, rowOrder: rowOrder, into: &report)
                }
                return report
            }
            results.withLock { $0.append(outcome) }
        }
        var report = empty
        for outcome in results.withLock({ $0 }) { report.merge(try outcome.get()) }
        return report
    }

    static func detect(
        _ source: some ByteSource, _ tensor: TensorLayout, key: WatermarkKey, rowOrder: RowOrder,
        into report: inout DetectionReport
    ) throws {
        guard let rowBytes = tensor.rowBytes else { return }
        let role = TensorRole.of(tensor.name)
        let chips = ChipSource(key: key, role: role)
        let n = tensor.rowLength
        let rowsPerRead = max(1, (4 << 20) / rowBytes)
        var buffer = [UInt8](repeating: 0, count: rowsPerRead * rowBytes)
        let fractions = report.sparse.map(\.fraction)
        let largestFraction = fractions.max() ?? 0
        var sums = [(correlated: Double, squares: Double, count: Int)](repeating: (0, 0, 0), count: fractions.count)
        var row = 0
        while row < tensor.rowCount {
            let count = min(rowsPerRead, tensor.rowCount - row)
            try buffer.withUnsafeMutableBytes { raw in
                let piece = UnsafeMutableRawBufferPointer(rebasing: raw[0..<(count * rowBytes)])
                try source.read(at: tensor.bytes.lowerBound + UInt64(row * rowBytes), into: piece)
                for r in 0..<count {
                    var w: [Float] = []
                    try Dequantize.append(
                        UnsafeRawBufferPointer(rebasing: piece[(r * rowBytes)..<((r + 1) * rowBytes)]),
                        as: tensor.encoding, to: &w)
                    let canonical = rowOrder.canonical(role: role, row: row + r, rows: tensor.rowCount)
                    let c = chips.chips(row: canonical, columns: n)
                    let moments = report.dense.add(row: w, chips: c)
                    // One pass over the uniforms serves every fraction (the selections nest), and
                    // near and far are judged on the suspect's own row.
                    let (mean, sigma) = moments
                    guard sigma > 0, sigma.isFinite else { continue }
                    let selection = SparseSelection(mean: mean, deviation: sigma)
                    let candidates = chips.below(
                        largestFraction * SparseSelection.farFactor, row: canonical, columns: n, purpose: 2)
                    for i in sums.indices { sums[i] = (0, 0, 0) }
                    for (j, u) in candidates {
                        let factor = selection.factor(w[j])
                        let y = (Double(w[j]) - mean) / sigma
                        for i in sums.indices where u < fractions[i] * factor {
                            sums[i].correlated += Double(c[j]) * y
                            sums[i].squares += y * y
                            sums[i].count += 1
                        }
                    }
                    for i in sums.indices where sums[i].count > 0 {
                        report.sparse[i].detection.add(
                            correlated: sums[i].correlated, squares: sums[i].squares, weights: sums[i].count)
                    }
                }
            }
            row += count
        }
    }
}

extension Watermarking {
    /// Informed detection, for the owner who has the original: the same correlation over the
    /// difference suspect − original of each marked matrix (matched by role and shape), so the
    /// weights themselves no longer count as noise and z grows to about the mark's share of the
    /// difference × √N. Matrices without a counterpart in the original are skipped.
    ///
    /// With `realign`, each matrix's rows and then its columns are first matched to the
    /// original's (each suspect row to the original row it correlates with best), which undoes a
    /// permutation of neurons — the FFN's hidden units reorder the rows of its up/gate matrices
    /// and the columns of its down matrix without changing what the model computes.
    public static func detectInformed(
        _ suspect: some ByteSource, tensors: [TensorLayout], original: some ByteSource,
        originalTensors: [TensorLayout], key: WatermarkKey, realign: Bool = false
    ) throws -> Detection {
        try detectInformed(
            suspect, tensors: tensors, original: original, originalTensors: originalTensors, keys: [key],
            realign: realign)[0]
    }

    /// Informed detection of several keys at once: the difference is read and taken once.
    public static func detectInformed(
        _ suspect: some ByteSource, tensors: [TensorLayout], original: some ByteSource,
        originalTensors: [TensorLayout], keys: [WatermarkKey], realign: Bool = false
    ) throws -> [Detection] {
        var byRole: [String: TensorLayout] = [:]
        for t in originalTensors where isMarkable(t) { byRole[TensorRole.of(t.name)] = t }
        var detections = [Detection](repeating: Detection(), count: keys.count)
        for tensor in tensors where isMarkable(tensor) {
            let role = TensorRole.of(tensor.name)
            guard let base = byRole[role], base.shape == tensor.shape else { continue }
            let sources = keys.map { ChipSource(key: $0, role: role) }
            let (rows, columns) = (tensor.rowCount, tensor.rowLength)
            guard realign else {
                for row in 0..<rows {
                    let w = try readRow(suspect, tensor, row)
                    let o = try readRow(original, base, row)
                    let difference = zip(w, o).map { $0 - $1 }
                    for (k, chips) in sources.enumerated() {
                        detections[k].add(row: difference, chips: chips.chips(row: row, columns: columns))
                    }
                }
                continue
            }
            // A neuron permutation reorders the rows of one matrix or the columns of the next,
            // never both: match rows and columns separately and keep the better match.
            let w = try (0..<rows).flatMap { try readRow(suspect, tensor, $0) }
            let o = try (0..<rows).flatMap { try readRow(original, base, $0) }
            let byRows = Alignment.match(w, o, count: rows, length: columns, stride: (columns, 1))
            let byColumns = Alignment.match(w, o, count: columns, length: rows, stride: (1, columns))
            let rowsMoved = byRows.score / Float(rows) >= byColumns.score / Float(columns)
            for r in 0..<rows {
                let source = rowsMoved ? byRows.map[r] : r
                var difference = [Float](repeating: 0, count: columns)
                for j in 0..<columns {
                    difference[j] = w[r * columns + j] - o[source * columns + (rowsMoved ? j : byColumns.map[j])]
                }
                for (k, chips) in sources.enumerated() {
                    let c = chips.chips(row: source, columns: columns)
                    let chip = rowsMoved ? c : (0..<columns).map { c[byColumns.map[$0]] }
                    detections[k].add(row: difference, chips: chip)
                }
            }
        }
        return detections
    }

    static func readRow(_ source: some ByteSource, _ tensor: TensorLayout, _ row: Int) throws -> [Float] {
        let rowBytes = tensor.rowBytes!
        let raw = try source.bytes(at: tensor.bytes.lowerBound + UInt64(row * rowBytes), count: rowBytes)
        var out: [Float] = []
        try raw.withUnsafeBytes { try Dequantize.append($0, as: tensor.encoding, to: &out) }
        return out
    }
}

/// Matches the vectors of one matrix to another's.
enum Alignment {
    /// For each of `count` vectors of `a` (element i of vector v at v·stride.0 + i·stride.1), the
    /// index of the vector of `b` it correlates with best (greedy; ties and repeats allowed), and
    /// the sum of those best correlations.
    static func match(_ a: [Float], _ b: [Float], count: Int, length: Int, stride: (Int, Int)) -> (
        map: [Int], score: Float
    ) {
        func normalised(_ m: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: count * length)
            for v in 0..<count {
                var mean: Float = 0
                for i in 0..<length { mean += m[v * stride.0 + i * stride.1] }
                mean /= Float(length)
                var norm: Float = 0
                for i in 0..<length {
                    let x = m[v * stride.0 + i * stride.1] - mean
                    out[v * length + i] = x
                    norm += x * x
                }
                let scale = norm > 0 ? 1 / norm.squareRoot() : 0
                for i in 0..<length { out[v * length + i] *= scale }
            }
            return out
        }
        let (x, y) = (normalised(a), normalised(b))
        var total: Float = 0
        let map = x.withUnsafeBufferPointer { x in
            y.withUnsafeBufferPointer { y in
                (0..<count).map { v in
                    var best = v
                    var bestScore = -Float.infinity
                    for u in 0..<count {
                        var dot: Float = 0
                        for i in 0..<length { dot += x[v * length + i] * y[u * length + i] }
                        if dot > bestScore { (best, bestScore) = (u, dot) }
                    }
                    total += bestScore
                    return best
                }
            }
        }
        return (map, total)
    }
}

/// Every test of one key: dense, and sparse at each selection fraction.
public struct DetectionReport: Sendable, Equatable {
    /// Over every weight: how float files are marked.
    public var dense = Detection()
    /// Over the key's sparse selections: how quantized files are marked.
    public var sparse: [SparseDetection] = []

    mutating func merge(_ other: DetectionReport) {
        dense.merge(other.dense)
        for i in sparse.indices { sparse[i].detection.merge(other.sparse[i].detection) }
    }

    /// The strongest test.
    public var best: Detection { ([dense] + sparse.map(\.detection)).max { $0.z < $1.z }! }
    /// How many tests `best` was chosen from (multiply its bound by this).
    public var testCount: Int { 1 + sparse.count }
}

public struct SparseDetection: Sendable, Equatable {
    public var fraction: Float
    public var detection = Detection()
}

/// The outcome of testing one key: z = Σ c_j·y_j / √(Σ y_j²) over the tested weights, with
/// y_j = (w_j − mean_row) / σ_row.
public struct Detection: Sendable, Equatable {
    /// Σ over tested weights of c_j·y_j.
    public var correlationSum: Double = 0
    /// Σ over tested weights of y_j² (a whole row contributes exactly its length).
    public var squares: Double = 0
    public var rows = 0
    public var weights = 0

    mutating func merge(_ other: Detection) {
        correlationSum += other.correlationSum
        squares += other.squares
        rows += other.rows
        weights += other.weights
    }

    /// ≈ α·√(marked weights) when the key's mark is present. Without it the chips are
    /// independent ±1 signs of fixed y_j, so P(z ≥ t) ≤ e^(−t²/2) (Hoeffding), whatever the
    /// weights are and whichever of them were tested.
    public var z: Double { squares > 0 ? correlationSum / squares.squareRoot() : 0 }
    /// A distribution-free bound on the probability of a z this high without the mark.
    public var falsePositiveBound: Double { z <= 0 ? 1 : exp(-z * z / 2) }

    /// Adds one row's part of a sparse test: Σ_{j∈S} c_j·y_j and Σ_{j∈S} y_j² over the `weights`
    /// columns S it tested. Dividing by the tested weights' own spread rather than their count
    /// keeps z honest when the test leans on far weights, and lets the weights a pruned copy
    /// zeroed stop counting as noise.
    mutating func add(correlated: Double, squares: Double, weights: Int) {
        correlationSum += correlated
        self.squares += squares
        rows += 1
        self.weights += weights
    }

    /// Adds one whole row (the dense test): Σ_j c_j (w_j − mean) / σ, in one pass (Σw, Σw², Σcw,
    /// Σc). Returns the row's moments for the sparse tests.
    @discardableResult
    mutating func add(row w: [Float], chips c: [Float]) -> (mean: Double, deviation: Double) {
        var (sum, sumOfSquares, correlated, chipSum) = (0.0, 0.0, 0.0, 0.0)
        w.withUnsafeBufferPointer { w in
            c.withUnsafeBufferPointer { c in
                for j in 0..<w.count {
                    let x = Double(w[j])
                    sum += x
                    sumOfSquares += x * x
                    correlated += Double(c[j]) * x
                    chipSum += Double(c[j])
                }
            }
        }
        let n = Double(w.count)
        let mean = sum / n
        let sigma = max(0, sumOfSquares / n - mean * mean).squareRoot()
        guard sigma > 0, sigma.isFinite else { return (mean, sigma) }
        correlationSum += (correlated - mean * chipSum) / sigma
        self.squares += n
        rows += 1
        weights += w.count
        return (mean, sigma)
    }

    static func moments(_ w: [Float]) -> (mean: Double, deviation: Double) {
        var sum = 0.0
        var squares = 0.0
        for x in w {
            sum += Double(x)
            squares += Double(x) * Double(x)
        }
        let mean = sum / Double(w.count)
        return (mean, max(0, squares / Double(w.count) - mean * mean).squareRoot())
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

    /// Row values as floats, in bulk.
    func load(_ raw: UnsafeRawBufferPointer, into w: UnsafeMutableBufferPointer<Float>) {
        switch self {
        case .f32:
            UnsafeMutableRawBufferPointer(w).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(4 * w.count)]))
        case .f16:
            mvault_half_to_float(raw.baseAddress!.assumingMemoryBound(to: UInt16.self), w.baseAddress!, w.count)
        case .bf16:
            for j in 0..<w.count {
                w[j] = Dequantize.bf16(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
            }
        }
    }

    /// Rounds every value to this type's grid, in place (representable values stay as they are).
    func round(_ t: UnsafeMutableBufferPointer<Float>, scratch bits: inout [UInt16]) {
        switch self {
        case .f32: return
        case .f16:
            bits.withUnsafeMutableBufferPointer { b in
                mvault_float_to_half(t.baseAddress!, b.baseAddress!, t.count)
                mvault_half_to_float(b.baseAddress!, t.baseAddress!, t.count)
            }
        case .bf16:
            for j in 0..<t.count where t[j].isFinite { t[j] = Dequantize.bf16(Self.bf16Bits(t[j])) }
        }
    }

    /// Writes `values` (on this type's grid) over the row, except where the original was not a
    /// finite number: those bytes stay exactly as they were.
    func store(
        _ values: UnsafeBufferPointer<Float>, original: UnsafeBufferPointer<Float>, allFinite: Bool,
        into raw: UnsafeMutableRawBufferPointer, scratch bits: inout [UInt16]
    ) {
        switch self {
        case .f16:
            bits.withUnsafeMutableBufferPointer { b in
                mvault_float_to_half(values.baseAddress!, b.baseAddress!, values.count)
                if allFinite {
                    raw.copyMemory(from: UnsafeRawBufferPointer(b))
                    return
                }
                for j in 0..<values.count where original[j].isFinite {
                    raw.storeBytes(of: b[j].littleEndian, toByteOffset: 2 * j, as: UInt16.self)
                }
            }
        default:
            for j in 0..<values.count where original[j].isFinite { store(raw, j, values[j]) }
        }
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
