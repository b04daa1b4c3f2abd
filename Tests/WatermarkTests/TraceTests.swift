import Foundation
import ModelFormats
import Testing

@testable import Watermark

/// Q8_0 blocks of `values` (a multiple of 32), as llama.cpp quantizes: d = max|x| / 127.
func quantizedQ8Blocks(_ values: [Float]) -> [UInt8] {
    var out: [UInt8] = []
    for block in stride(from: 0, to: values.count, by: 32) {
        let x = values[block..<(block + 32)]
        let d = (x.map(abs).max() ?? 0) / 127
        let half = Float16(d)
        withUnsafeBytes(of: half.bitPattern.littleEndian) { out += $0 }
        let inverse = d == 0 ? 0 : 1 / d
        for v in x { out.append(UInt8(bitPattern: Int8((v * inverse).rounded()))) }
    }
    return out
}

@Suite("Watermark: trace")
struct TraceTests {
    @Test("trace names the right account among 20 recipients after a Q8_0 conversion")
    func traceAfterQ8_0() throws {
        let secret = [UInt8](repeating: 0x42, count: 32)
        let recipients = (1...20).map {
            Trace.Candidate(
                name: "user\($0)", key: .recipient(secret: secret, recipient: "user\($0)", model: "acme/m", version: 1))
        }
        let owner = WatermarkKey.owner(secret: secret, model: "acme/m")
        let (rows, columns) = (256, 1024)
        let original = try SafetensorsWriter.encode([
            .init(
                name: "model.layers.0.mlp.down_proj.weight", dtype: .f32, shape: [rows, columns],
                data: encode(weights(rows * columns, seed: 77), as: .f32))
        ])
        // What user7 pulled: the owner mark and user7's code, at α = 0.02 (a small test model).
        let pulled = try embed(original, keys: [owner, recipients[6].key], strength: 0.02)
        // The thief converts it to a Q8_0 GGUF.
        let file = try SafetensorsFile(source: BufferSource(pulled))
        var values: [Float] = []
        try pulled[Int(file.tensors[0].bytes.lowerBound)...].withUnsafeBytes {
            try Dequantize.append($0, as: .safetensors(.f32), to: &values)
        }
        var g = GGUFBytes(tensors: 1, metadata: 0)
        g.tensor("blk.0.ffn_down.weight", ne: [columns, rows], type: .q8_0, offset: 0)
        g.align()
        g.bytes += quantizedQ8Blocks(values)
        let converted = try GGUFFile(source: BufferSource(g.bytes))

        let result = try Trace.run(
            BufferSource(g.bytes), tensors: converted.tensors, candidates: recipients, strength: 0.02)
        // 20 candidates × 5 tests at a family-wise rate of 10⁻⁶: z ≥ √(2 ln 10⁸) ≈ 6.07.
        #expect(abs(result.threshold - 6.07) < 0.01)
        #expect(result.matches.map(\.name) == ["user7"], "\(result.candidates.prefix(3))")
        #expect(result.candidates[0].z > 10)
        #expect(result.candidates[0].familyWiseBound < 1e-12)
        #expect(result.candidates.dropFirst().allSatisfy { $0.z < 5 })
        // The owner mark is there too.
        let ownerReport = try Watermarking.detect(
            BufferSource(g.bytes), tensors: converted.tensors, key: owner, strength: 0.02)
        #expect(ownerReport.best.z > 10)
    }
}
