import Foundation
import ModelFormats
import Testing

@testable import Watermark

/// Deterministic Gaussian-ish weights (sum of uniforms), `count` of them.
func weights(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func next() -> Float {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(state >> 40) / Float(1 << 24)
    }
    return (0..<count).map { _ in (next() + next() + next() + next() - 2) * 0.05 }
}

func encode(_ values: [Float], as dtype: SafetensorsDType) -> [UInt8] {
    var out: [UInt8] = []
    for v in values {
        switch dtype {
        case .f32: withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
        case .f16: withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { out += $0 }
        default: withUnsafeBytes(of: FloatCodec.bf16Bits(v).littleEndian) { out += $0 }
        }
    }
    return out
}

/// A small model: three 64 × 512 matrices (F32, F16, BF16) and a norm vector.
func model() throws -> [UInt8] {
    try SafetensorsWriter.encode(
        [
            .init(
                name: "model.layers.0.mlp.down_proj.weight", dtype: .f32, shape: [64, 512],
                data: encode(weights(64 * 512, seed: 1), as: .f32)),
            .init(
                name: "model.layers.0.self_attn.q_proj.weight", dtype: .f16, shape: [64, 512],
                data: encode(weights(64 * 512, seed: 2), as: .f16)),
            .init(
                name: "model.layers.1.mlp.up_proj.weight", dtype: .bf16, shape: [64, 512],
                data: encode(weights(64 * 512, seed: 3), as: .bf16)),
            .init(name: "model.norm.weight", dtype: .f32, shape: [512], data: encode(weights(512, seed: 4), as: .f32)),
        ], metadata: ["owner": "acme"])
}

func key(_ n: UInt8) -> WatermarkKey { WatermarkKey(bytes: [UInt8](repeating: n, count: 31) + [0x5A]) }

func embed(_ bytes: [UInt8], keys: [WatermarkKey], strength: Float) throws -> [UInt8] {
    let file = try SafetensorsFile(source: BufferSource(bytes))
    var out: [UInt8] = []
    try Watermarking.embed(BufferSource(bytes), tensors: file.tensors, keys: keys, strength: strength) { out += $0 }
    return out
}

func detect(_ bytes: [UInt8], _ key: WatermarkKey) throws -> Detection {
    try Watermarking.detect(
        BufferSource(bytes), tensors: try SafetensorsFile(source: BufferSource(bytes)).tensors, key: key
    ).dense
}

@Suite("Watermark: embed and blind detection")
struct WatermarkTests {
    @Test("the right key is found far above threshold, wrong keys are not; unmarked bytes stay")
    func embedAndDetect() throws {
        let original = try model()
        let marked = try embed(original, keys: [key(1)], strength: 0.04)
        #expect(marked.count == original.count)
        let file = try SafetensorsFile(source: BufferSource(original))
        // Header and the norm vector are untouched; every matrix changed.
        #expect(marked[..<Int(file.dataStart)] == original[..<Int(file.dataStart)])
        for t in file.tensors {
            let same =
                marked[Int(t.bytes.lowerBound)..<Int(t.bytes.upperBound)]
                == original[Int(t.bytes.lowerBound)..<Int(t.bytes.upperBound)]
            #expect(same == (t.shape.count == 1), "\(t.name)")
        }
        // 98,304 marked weights at α = 0.04: z ≈ 0.04 × √98304 ≈ 12.5, plus the unmarked
        // model's own N(0, 1) correlation with the key (blind detection cannot remove it).
        let right = try detect(marked, key(1))
        #expect(right.weights == 3 * 64 * 512)
        #expect(right.z > 8, "z = \(right.z)")
        #expect(right.falsePositiveBound < 1e-5)
        #expect(abs(try detect(original, key(1)).z) < 4)
        for k in 2...41 {
            #expect(abs(try detect(marked, key(UInt8(k))).z) < 4.5, "key \(k)")
        }
    }

    @Test("BF16 and F16 keep the mark even though α·σ is far below one step of their grid")
    func narrowTypesKeepTheMark() throws {
        let original = try model()
        let marked = try embed(original, keys: [key(7)], strength: 0.05)
        let file = try SafetensorsFile(source: BufferSource(marked))
        for t in file.tensors where t.shape.count == 2 {
            // Against the same tensor unmarked, the mark adds α·√32768 ≈ 9 to z in every type.
            let z = try Watermarking.detect(BufferSource(marked), tensors: [t], key: key(7)).dense.z
            let before = try Watermarking.detect(BufferSource(original), tensors: [t], key: key(7)).dense.z
            #expect(abs(z - before - 9.05) < 1.5, "\(t.name) (\(t.encoding)): z = \(z), unmarked \(before)")
        }
    }

    @Test("two keys embedded together are each detected")
    func twoMarks() throws {
        let marked = try embed(try model(), keys: [key(1), key(2)], strength: 0.04)
        #expect(try detect(marked, key(1)).z > 8)
        #expect(try detect(marked, key(2)).z > 8)
        #expect(abs(try detect(marked, key(3)).z) < 4.5)
    }

    @Test("informed detection names both colluders of an averaged copy; a wrong key stays low")
    func informedCollusion() throws {
        let original = try model()
        let a = try embed(original, keys: [key(1)], strength: 0.004)
        let b = try embed(original, keys: [key(2)], strength: 0.004)
        let file = try SafetensorsFile(source: BufferSource(original))
        // The F32 matrix of both copies averaged, the rest taken from the first.
        var averaged = a
        let t = try #require(file.tensors.first { $0.encoding == .safetensors(.f32) && $0.shape.count == 2 })
        for i in stride(from: Int(t.bytes.lowerBound), to: Int(t.bytes.upperBound), by: 4) {
            let x = Float(bitPattern: a[i..<(i + 4)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
            let y = Float(bitPattern: b[i..<(i + 4)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
            withUnsafeBytes(of: ((x + y) / 2).bitPattern) { averaged.replaceSubrange(i..<(i + 4), with: $0) }
        }
        func informed(_ suspect: [UInt8], _ k: WatermarkKey, only: TensorLayout) throws -> Double {
            try Watermarking.detectInformed(
                BufferSource(suspect), tensors: [only], original: BufferSource(original), originalTensors: file.tensors,
                key: k
            ).z
        }
        // Blind, α = 0.004 over 32,768 weights is z ≈ 0.7: invisible. Informed, the host is gone.
        #expect(try informed(averaged, key(1), only: t) > 30)
        #expect(try informed(averaged, key(2), only: t) > 30)
        #expect(abs(try informed(averaged, key(3), only: t)) < 4.5)
    }

    @Test(
        "informed detection with re-alignment finds the mark after rows or columns are permuted",
        arguments: [true, false])
    func permutedNeurons(rowsPermuted: Bool) throws {
        let original = try model()
        let marked = try embed(original, keys: [key(1)], strength: 0.004)
        let file = try SafetensorsFile(source: BufferSource(original))
        let t = try #require(file.tensors.first { $0.encoding == .safetensors(.f32) && $0.shape.count == 2 })
        let (rows, columns) = (t.rowCount, t.rowLength)
        // Reverse the rows, or rotate the columns, of the marked F32 matrix.
        var permuted = marked
        let base = Int(t.bytes.lowerBound)
        for r in 0..<rows {
            for j in 0..<columns {
                let from = base + (rowsPermuted ? (rows - 1 - r) * columns + j : r * columns + (j + 7) % columns) * 4
                let to = base + (r * columns + j) * 4
                permuted.replaceSubrange(to..<(to + 4), with: marked[from..<(from + 4)])
            }
        }
        func informed(_ k: WatermarkKey, realign: Bool) throws -> Double {
            try Watermarking.detectInformed(
                BufferSource(permuted), tensors: [t], original: BufferSource(original), originalTensors: file.tensors,
                key: k, realign: realign
            ).z
        }
        #expect(abs(try informed(key(1), realign: false)) < 4.5)
        #expect(try informed(key(1), realign: true) > 30)
        #expect(abs(try informed(key(2), realign: true)) < 4.5)
    }

    @Test("marking is deterministic per key: the same input and key give the same bytes")
    func deterministic() throws {
        let original = try model()
        #expect(try embed(original, keys: [key(1)], strength: 0.02) == embed(original, keys: [key(1)], strength: 0.02))
        #expect(try embed(original, keys: [key(1)], strength: 0.02) != embed(original, keys: [key(2)], strength: 0.02))
    }

    @Test("weight matrices are marked; norms, vectors and embedding tables are not")
    func markable() {
        func t(_ name: String, _ shape: [Int], _ encoding: TensorEncoding = .safetensors(.f32)) -> TensorLayout {
            TensorLayout(name: name, shape: shape, encoding: encoding, bytes: 0..<0)
        }
        #expect(Watermarking.isMarkable(t("model.layers.0.mlp.up_proj.weight", [1536, 384])))
        #expect(Watermarking.isMarkable(t("blk.0.ffn_up.weight", [1536, 576], .ggml(.q4_1))))
        #expect(!Watermarking.isMarkable(t("model.norm.weight", [384])))
        #expect(!Watermarking.isMarkable(t("embeddings.word_embeddings.weight", [30522, 384])))
        #expect(!Watermarking.isMarkable(t("token_embd.weight", [49152, 576], .ggml(.q8_0))))
        #expect(!Watermarking.isMarkable(t("model.layers.0.mlp.up_proj.weight", [1536, 384], .safetensors(.i8))))
        #expect(!Watermarking.isMarkable(t("narrow.weight", [1536, 8])))
    }

    @Test("roles are the same under Hugging Face, BERT and llama.cpp names")
    func roles() {
        #expect(TensorRole.of("model.layers.3.self_attn.q_proj.weight") == "blk.3.attn_q")
        #expect(TensorRole.of("blk.3.attn_q.weight") == "blk.3.attn_q")
        #expect(TensorRole.of("model.layers.0.mlp.down_proj.weight") == TensorRole.of("blk.0.ffn_down.weight"))
        #expect(TensorRole.of("encoder.layer.2.attention.self.query.weight") == "blk.2.attn_q")
        #expect(TensorRole.of("bert.encoder.layer.2.intermediate.dense.weight") == "blk.2.ffn_up")
        #expect(TensorRole.of("encoder.layer.2.output.dense.weight") == "blk.2.ffn_down")
        #expect(TensorRole.of("0.auto_model.encoder.layer.2.attention.output.dense.weight") == "blk.2.attn_output")
        #expect(TensorRole.of("model.embed_tokens.weight") == "token_embd")
        #expect(TensorRole.of("token_embd.weight") == "token_embd")
        #expect(TensorRole.of("lm_head.weight") == "output")
    }
}
