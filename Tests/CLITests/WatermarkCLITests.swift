import Foundation
import ModelFormats
import Testing

/// A model of three 128 × 512 F32 matrices (196,608 weights) and a norm, with made-up weights.
func syntheticModel() throws -> [UInt8] {
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    func values(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count * 4)
        for _ in 0..<count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            let v = (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.1
            withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
        }
        return out
    }
    return try SafetensorsWriter.encode(
        [
            .init(
                name: "model.layers.0.self_attn.q_proj.weight", dtype: .f32, shape: [128, 512], data: values(128 * 512)),
            .init(name: "model.layers.0.mlp.up_proj.weight", dtype: .f32, shape: [128, 512], data: values(128 * 512)),
            .init(
                name: "model.layers.0.mlp.down_proj.weight", dtype: .f32, shape: [128, 512], data: values(128 * 512)),
            .init(name: "model.norm.weight", dtype: .f32, shape: [512], data: values(512)),
        ], metadata: ["format": "pt"])
}

@Suite("CLI: mvault watermark")
struct WatermarkCLITests {
    @Test("keygen, embed, detect: the right key is found, another is not, and nothing else changes")
    func roundTrip() async throws {
        let cli = try CLI()
        defer { try? FileManager.default.removeItem(at: cli.root) }
        let model = cli.root.appendingPathComponent("model.safetensors").path
        let original = try syntheticModel()
        try Data(original).write(to: URL(fileURLWithPath: model))

        let keygen = try await cli.run(["watermark", "keygen", "k1"], vaultFlag: false)
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let keyFile = cli.root.appendingPathComponent("k1").path
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int == 0o600)
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8).count == 65)
        #expect(try await cli.run(["watermark", "keygen", "k2"], vaultFlag: false).status == 0)
        let again = try await cli.run(["watermark", "keygen", "k1"], vaultFlag: false)
        #expect(again.status != 0 && again.stderr.contains("exists"))

        let embed = try await cli.run(
            [
                "watermark", "embed", "model.safetensors", "--key", "k1", "--output", "marked.safetensors",
                "--strength", "0.03",
            ],
            vaultFlag: false)
        #expect(embed.status == 0, "\(embed.stderr)")
        #expect(embed.stdout.contains("Marked 3 of 4 tensors (196608 weights"))
        let marked = [UInt8](try Data(contentsOf: cli.root.appendingPathComponent("marked.safetensors")))
        #expect(marked.count == original.count && marked != original)
        let file = try SafetensorsFile(source: BufferSource(original))
        #expect(marked[..<Int(file.dataStart)] == original[..<Int(file.dataStart)])
        let norm = try #require(file.tensors.first { $0.name == "model.norm.weight" })
        #expect(marked[Int(norm.bytes.lowerBound)...] == original[Int(norm.bytes.lowerBound)...])

        // α = 0.03 over 196,608 weights: z ≈ 13.
        let found = try await cli.run(["watermark", "detect", "marked.safetensors", "--key", "k1"], vaultFlag: false)
        #expect(found.status == 0, "\(found.stdout)\(found.stderr)")
        #expect(found.stdout.contains("verdict:    MARKED with this key"))
        let other = try await cli.run(["watermark", "detect", "marked.safetensors", "--key", "k2"], vaultFlag: false)
        #expect(other.status == 3)
        #expect(other.stdout.contains("no mark of this key found"))
        let clean = try await cli.run(["watermark", "detect", "model.safetensors", "--key", "k1"], vaultFlag: false)
        #expect(clean.status == 3)
        // With the original at hand, the difference carries the mark alone.
        let informed = try await cli.run(
            ["watermark", "detect", "marked.safetensors", "--key", "k1", "--original", "model.safetensors"],
            vaultFlag: false)
        #expect(informed.status == 0, "\(informed.stdout)\(informed.stderr)")
        #expect(informed.stdout.contains("against the original model.safetensors"))
        let informedOther = try await cli.run(
            ["watermark", "detect", "marked.safetensors", "--key", "k2", "--original", "model.safetensors"],
            vaultFlag: false)
        #expect(informedOther.status == 3)
    }

    @Test("bad input: clear errors, and no output file left behind")
    func badInput() async throws {
        let cli = try CLI()
        defer { try? FileManager.default.removeItem(at: cli.root) }
        try Data(try syntheticModel()).write(to: cli.root.appendingPathComponent("model.safetensors"))
        try Data("not a key".utf8).write(to: cli.root.appendingPathComponent("bad.key"))
        try Data("GGUF\u{3}\u{0}".utf8).write(to: cli.root.appendingPathComponent("broken.gguf"))
        try Data("hello world, not a model".utf8).write(to: cli.root.appendingPathComponent("notes.txt"))
        #expect(try await cli.run(["watermark", "keygen", "good.key"], vaultFlag: false).status == 0)

        let cases: [([String], String)] = [
            (["embed", "model.safetensors", "--key", "bad.key", "-o", "out"], "must hold 32 bytes"),
            (["embed", "model.safetensors", "--key", "missing.key", "-o", "out"], "cannot read the key file"),
            (["embed", "model.safetensors", "--key", "good.key", "-o", "model.safetensors"], "exists"),
            (["embed", "model.safetensors", "--key", "good.key", "-o", "out", "--strength", "2"], "--strength"),
            (["embed", "broken.gguf", "--key", "good.key", "-o", "out"], "truncated"),
            (["embed", "notes.txt", "--key", "good.key", "-o", "out"], "neither a safetensors file"),
            (["embed", "nothing.safetensors", "--key", "good.key", "-o", "out"], "cannot open"),
            (["detect", "broken.gguf", "--key", "good.key"], "truncated"),
        ]
        for (args, message) in cases {
            let result = try await cli.run(["watermark"] + args, vaultFlag: false)
            #expect(result.status == 1, "\(args)")
            #expect(result.stderr.contains(message), "\(args): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: cli.root.appendingPathComponent("out").path))
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: cli.root.path).filter {
            $0.contains("partial")
        }
        #expect(leftovers.isEmpty)
    }
}
