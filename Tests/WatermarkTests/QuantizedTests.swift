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

/// A GGUF file of one `rows` × `columns` matrix of `type` (random codes) and a norm vector.
func quantizedModel(_ type: GGMLType, rows: Int, columns: Int) -> [UInt8] {
    var b: [UInt8] = Array("GGUF".utf8)
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        b += Array(s.utf8)
    }
    u32(3)
    u64(2)
    u64(0)
    let matrix = randomBlocks(type, count: rows * columns / type.blockSize, seed: UInt64(type.rawValue) + 99)
    string("blk.0.ffn_down.weight")
    u32(2)
    u64(UInt64(columns))
    u64(UInt64(rows))
    u32(type.rawValue)
    u64(0)
    string("blk.0.ffn_norm.weight")
    u32(1)
    u64(UInt64(columns))
    u32(0)
    u64(UInt64((matrix.count + 31) / 32 * 32))
    b += [UInt8](repeating: 0, count: (32 - b.count % 32) % 32)
    b += matrix
    b += [UInt8](repeating: 0, count: (32 - b.count % 32) % 32)
    b += [UInt8](repeating: 0x3C, count: columns * 4)
    return b
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
        let changed = zip(before, after).filter { $0 != $1 }.count
        // (α / typical step)² of 524,288 values, one step each.
        let expected = Double(Watermarking.sparseFraction(type, strength: 0.03)) * 524_288
        #expect(
            abs(Double(changed) - expected) < 5 * expected.squareRoot() + 2,
            "\(type): \(changed) changed, expected \(expected)")
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
