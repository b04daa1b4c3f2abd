import Foundation
import ModelFormats
import Testing

/// A safetensors file with header `json` and `data` bytes of payload.
func safetensors(_ json: String, data: Int = 0) -> [UInt8] {
    safetensors(Array(json.utf8), data: data)
}

func safetensors(_ header: [UInt8], data: Int = 0) -> [UInt8] {
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + [UInt8](repeating: 0, count: data)
}

func parseSafetensors(_ bytes: [UInt8]) throws { _ = try SafetensorsFile(source: BufferSource(bytes)) }

/// Builds GGUF bytes field by field.
struct GGUFBuilder {
    var bytes: [UInt8] = Array("GGUF".utf8)
    init(version: UInt32 = 3, tensors: UInt64, metadata: UInt64) {
        u32(version)
        u64(tensors)
        u64(metadata)
    }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) { raw(Array(s.utf8)) }
    mutating func raw(_ b: [UInt8]) {
        u64(UInt64(b.count))
        bytes += b
    }
    /// A metadata entry of type `type` whose value is the 4 bytes of `value`.
    mutating func entry(_ key: String, type: UInt32 = 4, _ value: UInt32) {
        string(key)
        u32(type)
        u32(value)
    }
    mutating func tensor(_ name: String, ne: [UInt64], type: UInt32, offset: UInt64) {
        string(name)
        u32(UInt32(ne.count))
        for d in ne { u64(d) }
        u32(type)
        u64(offset)
    }
    /// Pads to `alignment` and appends `data` bytes.
    mutating func data(_ count: Int, alignment: Int = 32) {
        bytes += [UInt8](repeating: 0, count: (alignment - bytes.count % alignment) % alignment + count)
    }
}

func parseGGUF(_ bytes: [UInt8]) throws { _ = try GGUFFile(source: BufferSource(bytes)) }

/// Expects `body` to throw a `ModelFormatError` whose text contains every one of `words`.
func expectRefused(_ words: String..., sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("accepted; expected an error mentioning \(words)", sourceLocation: sourceLocation)
    } catch let error as ModelFormatError {
        for word in words where !error.description.contains(word) {
            Issue.record("\"\(error)\" does not mention \"\(word)\"", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Model formats: malformed files are refused with an error naming the problem")
struct MalformedTests {
    @Test func safetensorsHeaders() {
        expectRefused("truncated", "header length") { try parseSafetensors([1, 0, 0]) }
        expectRefused("over the limit") {
            try parseSafetensors(withUnsafeBytes(of: UInt64(200_000_000).littleEndian) { Array($0) })
        }
        expectRefused("beyond the end of the file") { try parseSafetensors(Array(safetensors("{}").prefix(9))) }
        expectRefused("not valid UTF-8") {
            try parseSafetensors(safetensors([UInt8(ascii: "{"), 0xFF, 0xFE, UInt8(ascii: "}")]))
        }
        expectRefused("JSON object") { try parseSafetensors(safetensors("[1, 2]")) }
        expectRefused("not valid JSON") { try parseSafetensors(safetensors("{\"w\": ")) }
        expectRefused("__metadata__", "strings to strings") {
            try parseSafetensors(safetensors(#"{"__metadata__": {"a": 1}}"#))
        }
        expectRefused("holds 4 bytes", "cover 0") { try parseSafetensors(safetensors("{}", data: 4)) }
    }

    @Test func safetensorsTensors() {
        expectRefused("tensor \"w\"", "unknown dtype \"F17\"") {
            try parseSafetensors(
                safetensors(#"{"w": {"dtype": "F17", "shape": [2], "data_offsets": [0, 8]}}"#, data: 8))
        }
        expectRefused("tensor \"w\"", "needs 8 bytes", "span 6") {
            try parseSafetensors(
                safetensors(#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 6]}}"#, data: 6))
        }
        expectRefused("tensor \"w\"", "data_offsets") {
            try parseSafetensors(safetensors(#"{"w": {"dtype": "F32", "shape": [2]}}"#, data: 8))
        }
        expectRefused("tensor \"w\"", "data_offsets must be") {
            try parseSafetensors(
                safetensors(#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}"#, data: 8))
        }
        expectRefused("tensor \"w\"", "negative") {
            try parseSafetensors(safetensors(#"{"w": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}}"#))
        }
        expectRefused("tensor \"b\"", "overlap") {
            try parseSafetensors(
                safetensors(
                    #"{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}"#,
                    data: 6))
        }
        expectRefused("tensor \"b\"", "hole of 2 bytes") {
            try parseSafetensors(
                safetensors(
                    #"{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, "b": {"dtype": "U8", "shape": [4], "data_offsets": [6, 10]}}"#,
                    data: 10))
        }
        expectRefused("tensor \"a\"", "beyond its end") {
            try parseSafetensors(safetensors(#"{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}"#, data: 2))
        }
        expectRefused("tensor \"a\"", "whole number of bytes") {
            try parseSafetensors(safetensors(#"{"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}"#, data: 2))
        }
        expectRefused("tensor \"a\"", "too large") {
            try parseSafetensors(
                safetensors(
                    #"{"a": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}"#, data: 8))
        }
    }

    func validGGUF() -> [UInt8] {
        var g = GGUFBuilder(tensors: 2, metadata: 1)
        g.string("general.name")
        g.u32(8)
        g.string("tiny")
        g.tensor("a", ne: [32, 2], type: 8, offset: 0)  // Q8_0: 2 rows of one block
        g.tensor("b", ne: [4], type: 0, offset: 96)  // F32
        g.data(96 + 16)
        return g.bytes
    }

    @Test func ggufValidAndEveryTruncation() throws {
        let bytes = validGGUF()
        let file = try GGUFFile(source: BufferSource(bytes))
        #expect(file.tensors.map(\.name) == ["a", "b"])
        #expect(file.tensors[0].shape == [2, 32] && file.tensors[0].rowBytes == 34)
        for cut in 0..<bytes.count {
            #expect(throws: ModelFormatError.self, "cut at \(cut)") { try parseGGUF(Array(bytes.prefix(cut))) }
        }
    }

    @Test func ggufHeaders() {
        expectRefused("not a GGUF file") { try parseGGUF(Array("GGML".utf8) + [UInt8](repeating: 0, count: 40)) }
        expectRefused("GGUF version 1") { try parseGGUF(GGUFBuilder(version: 1, tensors: 0, metadata: 0).bytes) }
        expectRefused("more than the file can hold") {
            try parseGGUF(GGUFBuilder(tensors: 1 << 40, metadata: 0).bytes)
        }
        expectRefused("appears twice") {
            var g = GGUFBuilder(tensors: 0, metadata: 2)
            g.entry("k", 1)
            g.entry("k", 1)
            try parseGGUF(g.bytes)
        }
        expectRefused("not valid UTF-8") {
            var g = GGUFBuilder(tensors: 0, metadata: 1)
            g.raw([0xC3, 0x28])
            g.u32(4)
            g.u32(1)
            try parseGGUF(g.bytes)
        }
        expectRefused("unknown type 13") {
            var g = GGUFBuilder(tensors: 0, metadata: 1)
            g.entry("k", type: 13, 0)
            try parseGGUF(g.bytes)
        }
        expectRefused("general.alignment", "power of two") {
            var g = GGUFBuilder(tensors: 0, metadata: 1)
            g.entry("general.alignment", 24)
            try parseGGUF(g.bytes)
        }
        expectRefused("truncated") {
            var g = GGUFBuilder(tensors: 0, metadata: 1)
            g.string("k")
            g.u32(9)  // array
            g.u32(4)
            g.u64(1 << 50)
            try parseGGUF(g.bytes)
        }
    }

    @Test func ggufTensors() {
        func one(ne: [UInt64], type: UInt32, offset: UInt64 = 0, data: Int = 64) throws {
            var g = GGUFBuilder(tensors: 1, metadata: 0)
            g.tensor("blk.0.attn_q.weight", ne: ne, type: type, offset: offset)
            g.data(data)
            try parseGGUF(g.bytes)
        }
        expectRefused("blk.0.attn_q.weight", "not a multiple of the alignment 32") {
            try one(ne: [4], type: 0, offset: 8)
        }
        expectRefused("blk.0.attn_q.weight", "unknown ggml type 99") { try one(ne: [4], type: 99) }
        expectRefused("blk.0.attn_q.weight", "whole number of Q8_0 blocks") { try one(ne: [33], type: 8) }
        expectRefused("blk.0.attn_q.weight", "runs past the end") { try one(ne: [64], type: 0) }
        expectRefused("blk.0.attn_q.weight", "dimensions") { try one(ne: [1, 1, 1, 1, 1], type: 0) }
        expectRefused("\"b\"", "overlaps that of a") {
            var g = GGUFBuilder(tensors: 2, metadata: 0)
            g.tensor("a", ne: [16], type: 0, offset: 0)
            g.tensor("b", ne: [16], type: 0, offset: 32)
            g.data(128)
            try parseGGUF(g.bytes)
        }
        expectRefused("\"a\"", "appears twice") {
            var g = GGUFBuilder(tensors: 2, metadata: 0)
            g.tensor("a", ne: [4], type: 0, offset: 0)
            g.tensor("a", ne: [4], type: 0, offset: 32)
            g.data(64)
            try parseGGUF(g.bytes)
        }
    }
}

@Suite("Model formats: rewriting")
struct RewriteTests {
    @Test("a tensor with no rows but an enormous row length is copied, not given a row buffer")
    func emptyTensorWithHugeRows() throws {
        // Found by ModelFormatsFuzz: ne = [2^33, 0] is a valid, empty tensor.
        var g = GGUFBuilder(tensors: 1, metadata: 0)
        g.tensor("a", ne: [1 << 33, 0], type: 0, offset: 0)
        g.data(0)
        let source = BufferSource(g.bytes)
        let file = try GGUFFile(source: source)
        var out: [UInt8] = []
        try ModelRewriter.rewrite(
            source, tensors: file.tensors, select: { _ in true }, transform: { _, _, _ in Issue.record("called") },
            sink: { out += $0 })
        #expect(out == g.bytes)
    }

    @Test("rows over the limit are refused, naming the tensor")
    func rowLimit() throws {
        let tensor = TensorLayout(
            name: "wide", shape: [1, 1 << 27], encoding: .safetensors(.f32), bytes: 0..<(1 << 29))
        struct Endless: ByteSource {
            var size: UInt64 { 1 << 29 }
            func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {}
        }
        expectRefused("wide", "rows of 536870912 bytes") {
            try ModelRewriter.rewrite(
                Endless(), tensors: [tensor], select: { _ in true }, transform: { _, _, _ in }, sink: { _ in })
        }
    }
}
