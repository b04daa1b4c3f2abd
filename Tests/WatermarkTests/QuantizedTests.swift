import Foundation
import ModelFormats
import Testing

@testable import Watermark

/// `count` random blocks of `type` whose f16 scales (and mins) are sane.
func randomBlocks(_ type: GGMLType, count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    func byte() -> UInt8 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state >> 32)
    }
    var out: [UInt8] = []
    for _ in 0..<count {
        var block = (0..<type.typeSize).map { _ in byte() }
        let scale = Float16(0.01 + Float(byte()) / 25_600)
        let scaleBytes = withUnsafeBytes(of: scale.bitPattern.littleEndian) { Array($0) }
        let at = type == .q6_K ? 208 : 0
        block.replaceSubrange(at..<(at + 2), with: scaleBytes)
        if [.q4_1, .q5_1, .q4_K].contains(type) { block.replaceSubrange(2..<4, with: scaleBytes) }
        out += block
    }
    return out
}

func dequantized(_ bytes: [UInt8], _ type: GGMLType) throws -> [Float] {
    var out: [Float] = []
    try bytes.withUnsafeBytes { try Dequantize.append($0, as: .ggml(type), to: &out) }
    return out
}

/// GGUF bytes, field by field.
struct GGUFBytes {
    var bytes: [UInt8] = Array("GGUF".utf8)
    init(tensors: UInt64, metadata: UInt64) {
        u32(3)
        u64(tensors)
        u64(metadata)
    }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes += Array(s.utf8)
    }
    /// A tensor info: `ne` innermost first.
    mutating func tensor(_ name: String, ne: [Int], type: GGMLType, offset: Int) {
        string(name)
        u32(UInt32(ne.count))
        for d in ne { u64(UInt64(d)) }
        u32(type.rawValue)
        u64(UInt64(offset))
    }
    mutating func align() { bytes += [UInt8](repeating: 0, count: (32 - bytes.count % 32) % 32) }
}

/// A GGUF file of one `rows` × `columns` matrix of `type` (random codes) and a norm vector.
func quantizedModel(_ type: GGMLType, rows: Int, columns: Int) -> [UInt8] {
    let matrix = randomBlocks(type, count: rows * columns / type.blockSize, seed: UInt64(type.rawValue) + 99)
    var g = GGUFBytes(tensors: 2, metadata: 0)
    g.tensor("blk.0.ffn_down.weight", ne: [columns, rows], type: type, offset: 0)
    g.tensor("blk.0.ffn_norm.weight", ne: [columns], type: .f32, offset: (matrix.count + 31) / 32 * 32)
    g.align()
    g.bytes += matrix
    g.align()
    g.bytes += [UInt8](repeating: 0x3C, count: columns * 4)
    return g.bytes
}

@Suite("Watermark: quantized GGUF tensors")
struct QuantizedTests {
    static let types: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q6_K]

    @Test("one code step changes exactly one value, by exactly the step reported", arguments: types)
    func codeSteps(type: GGMLType) throws {
        let codes = try #require(QuantCodes(.ggml(type)))
        var row = randomBlocks(type, count: 2, seed: 5)
        let n = 2 * type.blockSize
        for e in stride(from: 0, to: n, by: 7) {
            for direction: Float in [1, -1] {
                let before = try dequantized(row, type)
                let code = row.withUnsafeMutableBytes { codes.code($0, e) }
                let step = row.withUnsafeMutableBytes { codes.step($0, e) }
                let delta = row.withUnsafeMutableBytes { codes.nudge($0, e, toward: direction) }
                let after = try dequantized(row, type)
                for j in 0..<n where j != e { #expect(after[j] == before[j], "\(type) e=\(e): element \(j) moved") }
                #expect(abs((after[e] - before[e]) - delta) <= 1e-6 * max(1, abs(before[e])), "\(type) e=\(e)")
                let moved = row.withUnsafeMutableBytes { codes.code($0, e) }
                #expect(abs(moved - code) == 1 && codes.range.contains(moved), "\(type) e=\(e): \(code) -> \(moved)")
                // Toward `direction`, unless the code was at the end of its range.
                let saturated = !codes.range.contains(code + ((direction > 0) == (step > 0) ? 1 : -1))
                #expect((delta * direction > 0) != saturated || step == 0, "\(type) e=\(e)")
            }
        }
    }

    @Test(
        "a sparse mark in a quantized matrix is found, changes only the chosen codes, and wrong keys are not",
        arguments: types)
    func sparseMark(type: GGMLType) throws {
        let original = quantizedModel(type, rows: 128, columns: 4096)
        let file = try GGUFFile(source: BufferSource(original))
        var marked: [UInt8] = []
        try Watermarking.embed(BufferSource(original), tensors: file.tensors, keys: [key(3)], strength: 0.03) {
            marked += $0
        }
        #expect(marked.count == original.count)
        let matrix = file.tensors[0]
        let norm = file.tensors[1]
        #expect(marked[Int(norm.bytes.lowerBound)...] == original[Int(norm.bytes.lowerBound)...])
        #expect(marked[..<Int(matrix.bytes.lowerBound)] == original[..<Int(matrix.bytes.lowerBound)])
        let range = Int(matrix.bytes.lowerBound)..<Int(matrix.bytes.upperBound)
        let before = try dequantized(Array(original[range]), type)
        let after = try dequantized(Array(marked[range]), type)
        // Exactly the weights the keyed, magnitude-aware selection chooses moved.
        let fraction = Watermarking.sparseFraction(type, strength: 0.03)
        let chips = ChipSource(key: key(3), role: "blk.0.ffn_down")
        var chosen: Set<Int> = []
        var farChosen = 0
        var farCount = 0
        for r in 0..<128 {
            let selection = SparseSelection(row: Array(before[(r * 4096)..<((r + 1) * 4096)]))
            let candidates = chips.below(fraction * SparseSelection.farFactor, row: r, columns: 4096, purpose: 2)
            let values = Array(before[(r * 4096)..<((r + 1) * 4096)])
            let row = selection.chosen(candidates, fraction: fraction, row: values)
            chosen.formUnion(row.map { r * 4096 + $0 })
            farChosen += row.filter { selection.isFar(values[$0]) }.count
            farCount += values.filter(selection.isFar).count
        }
        let changed = Set(zip(before, after).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset))
        // (Random K-quant blocks have some sub-blocks of scale 0, whose codes move without the value.)
        #expect(changed.isSubset(of: chosen), "\(type): \(changed.subtracting(chosen).count) moved unchosen")
        #expect(Double(changed.count) >= ([.q4_K, .q6_K].contains(type) ? 0.9 : 1) * Double(chosen.count), "\(type)")
        // A far weight is chosen 1.75 / 0.75 times as often as a near one (until the limit reaches 1).
        let nearChosen = chosen.count - farChosen
        let nearCount = 524_288 - farCount
        let ratio = (Double(farChosen) / Double(farCount)) / (Double(nearChosen) / Double(nearCount))
        let expectedRatio = Double(
            min(1, fraction * SparseSelection.farFactor) / min(1, fraction * SparseSelection.nearFactor))
        #expect(
            abs(ratio - expectedRatio) < 0.15 * expectedRatio, "\(type): far/near \(ratio), expected \(expectedRatio)")
        // The codes here are uniform, not Gaussian, so steps are smaller relative to σ than the
        // typical step assumed: z ≈ α·√N·(actual step / typical step), well above 5 still.
        let right = try Watermarking.detect(BufferSource(marked), tensors: file.tensors, key: key(3), strength: 0.03)
        #expect(right.best.z > 5, "\(type): \(right)")
        for k in [4, 5] as [UInt8] {
            let wrong = try Watermarking.detect(
                BufferSource(marked), tensors: file.tensors, key: key(k), strength: 0.03)
            #expect(wrong.best.z < 4.5, "\(type) key \(k): \(wrong)")
        }
    }
}

@Suite("Watermark: far and near weights")
struct SparseSelectionTests {
    @Test("a weight is far beyond 1.29 σ of its row's mean: a fifth of a Gaussian row; none in a row with NaN")
    func far() {
        var state: UInt64 = 7
        func uniform() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        let w = (0..<100_000).map { _ in Float((-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())) + 3 }
        let selection = SparseSelection(row: w)
        let mean = w.reduce(0.0) { $0 + Double($1) } / Double(w.count)
        let sigma = (w.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(w.count)).squareRoot()
        #expect(abs(selection.mean - mean) < 1e-9)
        #expect(abs(selection.line - 1.29 * sigma) < 1e-9)
        let share = Double(w.filter(selection.isFar).count) / Double(w.count)
        #expect(abs(share - 0.197) < 0.005, "\(share)")
        var broken = w
        broken[5] = .nan
        #expect(broken.filter(SparseSelection(row: broken).isFar).isEmpty)
    }
}

@Suite("Watermark: marks under magnitude pruning")
struct SparsePruningTests {
    let rows = 256
    let columns = 4096

    /// A GGUF of one F32 matrix holding `values` under the quantized model's tensor name.
    func floatModel(_ values: [Float]) -> [UInt8] {
        var g = GGUFBytes(tensors: 1, metadata: 0)
        g.tensor("blk.0.ffn_down.weight", ne: [columns, rows], type: .f32, offset: 0)
        g.align()
        for x in values { withUnsafeBytes(of: x.bitPattern.littleEndian) { g.bytes += $0 } }
        return g.bytes
    }

    /// The matrix's weights: Gaussian, σ = 0.02.
    func gaussians() -> [Float] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Double {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        return (0..<(rows * columns)).map { _ in
            Float((-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())) * 0.02
        }
    }

    /// Values with the 90 % smallest magnitudes set to zero.
    func pruned(_ values: [Float]) -> [Float] {
        let limit = values.map(abs).sorted()[values.count * 9 / 10]
        return values.map { abs($0) < limit ? 0 : $0 }
    }

    /// The matrix quantized as Q4_0 the way ggml does it (per block of 32: d = the value of
    /// largest magnitude / −8, codes round(x/d) + 8 clamped to 0…15).
    func gaussianQ40() -> [UInt8] {
        let weights = gaussians()
        var g = GGUFBytes(tensors: 1, metadata: 0)
        g.tensor("blk.0.ffn_down.weight", ne: [columns, rows], type: .q4_0, offset: 0)
        g.align()
        for b in 0..<(rows * columns / 32) {
            let x = weights[(b * 32)..<((b + 1) * 32)]
            let extreme = x.max { abs($0) < abs($1) }!
            let d = Float16(extreme / -8)
            let inverse = Float(d) == 0 ? 0 : 1 / Float(d)
            let q = x.map { UInt8(min(15, max(0, ($0 * inverse).rounded() + 8))) }
            withUnsafeBytes(of: d.bitPattern.littleEndian) { g.bytes += $0 }
            for i in 0..<16 { g.bytes.append(q[i] | q[i + 16] << 4) }
        }
        return g.bytes
    }

    func z(_ bytes: [UInt8], _ k: UInt8) throws -> Double {
        let file = try GGUFFile(source: BufferSource(bytes))
        return try Watermarking.detect(BufferSource(bytes), tensors: file.tensors, key: key(k), strength: 0.02).best.z
    }

    @Test("a sparse mark keeps three quarters of its z when 90 % of the dequantized weights are pruned by magnitude")
    func survivesPruning() throws {
        let original = gaussianQ40()
        let file = try GGUFFile(source: BufferSource(original))
        var marked: [UInt8] = []
        try Watermarking.embed(BufferSource(original), tensors: file.tensors, keys: [key(3)], strength: 0.02) {
            marked += $0
        }
        let matrix = file.tensors[0]
        let values = try dequantized(Array(marked[Int(matrix.bytes.lowerBound)..<Int(matrix.bytes.upperBound)]), .q4_0)
        #expect(pruned(values).filter { $0 == 0 }.count >= values.count * 89 / 100)
        let clean = try z(floatModel(values), 3)
        let after = try z(floatModel(pruned(values)), 3)
        #expect(clean > 10)
        // Measured: 0.92 × (0.64 × when near and far weights are chosen alike).
        #expect(after >= 0.75 * clean, "clean \(clean), pruned \(after)")
        for k in [4, 5] as [UInt8] {
            let wrong = try z(floatModel(pruned(values)), k)
            #expect(wrong < 4.5, "key \(k): \(wrong)")
        }
    }

    @Test("a dense mark keeps over 85 % of its z when 90 % of the weights are pruned by magnitude")
    func denseSurvivesPruning() throws {
        let original = floatModel(gaussians())
        let file = try GGUFFile(source: BufferSource(original))
        var marked: [UInt8] = []
        try Watermarking.embed(BufferSource(original), tensors: file.tensors, keys: [key(3)], strength: 0.02) {
            marked += $0
        }
        let matrix = file.tensors[0]
        let values = marked[Int(matrix.bytes.lowerBound)..<Int(matrix.bytes.upperBound)].withUnsafeBytes {
            Array($0.bindMemory(to: Float.self))
        }
        let clean = try z(floatModel(values), 3)
        let after = try z(floatModel(pruned(values)), 3)
        #expect(clean > 15)
        // Measured: 0.95 × (0.71 × with the mark spread evenly over near and far weights).
        #expect(after >= 0.85 * clean, "clean \(clean), pruned \(after)")
    }
}

@Suite("Watermark: llama.cpp's Q/K row order")
struct RowOrderTests {
    /// A GGUF (llama architecture, 4 heads) holding `matrix` (64 × 512 F32) as blk.0.attn_q,
    /// with its rows stored the way llama.cpp's converter permutes them.
    func llamaGGUF(_ matrix: [Float], rows: Int, columns: Int, heads: UInt32) -> [UInt8] {
        var g = GGUFBytes(tensors: 1, metadata: 2)
        g.string("general.architecture")
        g.u32(8)
        g.string("llama")
        g.string("llama.attention.head_count")
        g.u32(4)
        g.u32(heads)
        g.tensor("blk.0.attn_q.weight", ne: [columns, rows], type: .f32, offset: 0)
        g.align()
        let order = RowOrder(heads: ["blk.0.attn_q": Int(heads)])
        for stored in 0..<rows {
            let source = order.canonical(role: "blk.0.attn_q", row: stored, rows: rows)
            for j in 0..<columns {
                withUnsafeBytes(of: matrix[source * columns + j].bitPattern.littleEndian) { g.bytes += $0 }
            }
        }
        return g.bytes
    }

    @Test("the stored row of llama.cpp's permute maps back to its Hugging Face row")
    func mapping() {
        let order = RowOrder(heads: ["blk.0.attn_q": 2])
        // 2 heads of 4 rows: HF rows (h, s, i) are stored as (h, i, s).
        #expect((0..<8).map { order.canonical(role: "blk.0.attn_q", row: $0, rows: 8) } == [0, 2, 1, 3, 4, 6, 5, 7])
        #expect(order.canonical(role: "blk.0.attn_v", row: 1, rows: 8) == 1)
        #expect(RowOrder.identity.canonical(role: "blk.0.attn_q", row: 1, rows: 8) == 1)
    }

    @Test("a mark made in safetensors is found in the llama.cpp conversion of the file")
    func safetensorsToGGUF() throws {
        let (rows, columns) = (64, 512)
        let values = weights(rows * columns, seed: 21)
        let original = try SafetensorsWriter.encode([
            .init(
                name: "model.layers.0.self_attn.q_proj.weight", dtype: .f32, shape: [rows, columns],
                data: encode(values, as: .f32))
        ])
        let marked = try embed(original, keys: [key(1)], strength: 0.05)
        let file = try SafetensorsFile(source: BufferSource(marked))
        var markedValues: [Float] = []
        try marked[Int(file.tensors[0].bytes.lowerBound)...].withUnsafeBytes {
            try Dequantize.append($0, as: .safetensors(.f32), to: &markedValues)
        }
        let converted = llamaGGUF(markedValues, rows: rows, columns: columns, heads: 4)
        let gguf = try GGUFFile(source: BufferSource(converted))
        let order = RowOrder(gguf: gguf)
        let mapped = try Watermarking.detect(
            BufferSource(converted), tensors: gguf.tensors, key: key(1), rowOrder: order)
        let unmapped = try Watermarking.detect(BufferSource(converted), tensors: gguf.tensors, key: key(1))
        let inSafetensors = try detect(marked, key(1))
        // The same z as in the safetensors file; without the mapping only the rows the permutation
        // leaves in place (the first and last of each head) still line up.
        #expect(abs(mapped.dense.z - inSafetensors.z) < 0.01, "\(mapped.dense.z) vs \(inSafetensors.z)")
        #expect(mapped.dense.z > 8)
        #expect(unmapped.dense.z < mapped.dense.z / 2)
    }
}
