import Foundation
import ModelFormats
import Testing

@testable import Watermark

/// The committed vectors (Vectors/watermark-v1.txt), written by scripts/make-watermark-vectors.py
/// from docs/watermark.md with code that shares nothing with this module: an F32 safetensors
/// matrix (dense marks, some moves under half a step) and a Q4_0 GGUF matrix (sparse marks, one
/// block of scale zero and one negative), each marked with an owner and then a recipient key.
@Suite("Watermark: committed test vectors")
struct WatermarkVectorTests {
    struct Vector {
        var name = ""
        var keys: [WatermarkKey] = []
        var strength: Float = 0
        var input: [UInt8] = []
        var output: [UInt8] = []
    }

    static func bytes(_ hex: Substring) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map {
            UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16)!
        }
    }

    static func vectors() throws -> [Vector] {
        let url = try #require(Bundle.module.url(forResource: "Vectors/watermark-v1", withExtension: "txt"))
        var out: [Vector] = []
        var current = Vector()
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let (field, value) = (line[..<space], line[line.index(after: space)...])
            switch field {
            case "name": current = Vector(name: String(value))
            case "owner", "recipient": current.keys.append(WatermarkKey(bytes: bytes(value)))
            case "strength": current.strength = Float(value)!
            case "input": current.input = bytes(value)
            case "output":
                current.output = bytes(value)
                out.append(current)
            default: Issue.record("unknown field \(field)")
            }
        }
        return out
    }

    @Test("marking each vector's input with its keys gives its output, byte for byte")
    func vectors() throws {
        let vectors = try Self.vectors()
        #expect(vectors.map(\.name) == ["f32-safetensors", "q4_0-gguf"])
        for v in vectors {
            let file = try ModelFile.open(BufferSource(v.input))
            #expect(file.tensors.map { TensorRole.of($0.name) } == ["blk.0.ffn_down"])
            var marked: [UInt8] = []
            try Watermarking.embed(BufferSource(v.input), tensors: file.tensors, keys: v.keys, strength: v.strength) {
                marked += $0
            }
            #expect(marked.count == v.output.count, "\(v.name)")
            let differing = zip(marked, v.output).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            #expect(differing.isEmpty, "\(v.name): \(differing.count) bytes differ, first at \(differing.first ?? -1)")
            #expect(marked != v.input, "\(v.name): the vector moves something")
        }
    }
}
