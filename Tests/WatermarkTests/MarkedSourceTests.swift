import ModelFormats
import Testing

@testable import Watermark

@Suite("Watermark: marking on the fly, any byte range")
struct MarkedSourceTests {
    static func marked(_ original: [UInt8], tensors: [TensorLayout], keys: [WatermarkKey]) throws -> (
        whole: [UInt8], source: MarkedSource<BufferSource>
    ) {
        var whole: [UInt8] = []
        try Watermarking.embed(BufferSource(original), tensors: tensors, keys: keys, strength: 0.02) { whole += $0 }
        let marker = Marker(keys: keys, strength: 0.02)
        return (whole, MarkedSource(BufferSource(original), tensors: tensors, marker: marker))
    }

    static func check(_ whole: [UInt8], _ source: MarkedSource<BufferSource>, seed: UInt64) throws {
        #expect(source.size == UInt64(whole.count))
        #expect(try source.bytes(at: 0, count: whole.count) == whole)
        // Ranges that start and end anywhere: inside a row, on a row edge, across tensors.
        var state = seed
        for _ in 0..<200 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let a = Int((state >> 33) % UInt64(whole.count))
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let count = Int((state >> 33) % UInt64(min(9000, whole.count - a) + 1))
            #expect(try source.bytes(at: UInt64(a), count: count) == Array(whole[a..<(a + count)]), "\(a) +\(count)")
        }
        // Read in pieces of sizes that do and do not divide a row, as a download does.
        for piece in [333, 1024, 4999] {
            var out: [UInt8] = []
            var at = 0
            while at < whole.count {
                let n = min(piece, whole.count - at)
                out += try source.bytes(at: UInt64(at), count: n)
                at += n
            }
            #expect(out == whole, "pieces of \(piece)")
        }
    }

    @Test("float matrices: every range reads as the same bytes the whole marked file has")
    func floatRanges() throws {
        let original = try model()
        let tensors = try SafetensorsFile(source: BufferSource(original)).tensors
        let (whole, source) = try Self.marked(original, tensors: tensors, keys: [key(1), key(2)])
        #expect(whole != original)
        #expect(source.marksAnything)
        try Self.check(whole, source, seed: 1)
        // Row starts: inside a matrix, the start of the row; elsewhere, the offset itself.
        let matrix = tensors.first { $0.name.hasSuffix("down_proj.weight") }!
        let rowBytes = UInt64(matrix.rowBytes!)
        let start = matrix.bytes.lowerBound
        #expect(source.rowStart(atOrBefore: start + 3 * rowBytes + 5) == start + 3 * rowBytes)
        #expect(source.rowStart(atOrBefore: start + rowBytes) == start + rowBytes)
        #expect(source.rowStart(atOrBefore: 3) == 3)
        #expect(source.rowStart(atOrBefore: UInt64(original.count) - 1) == UInt64(original.count) - 1)
    }

    @Test("quantized matrices: every range reads as the same bytes the whole marked file has")
    func quantizedRanges() throws {
        let original = quantizedModel(.q4_K, rows: 16, columns: 1024)
        let tensors = try GGUFFile(source: BufferSource(original)).tensors
        let (whole, source) = try Self.marked(original, tensors: tensors, keys: [key(3)])
        #expect(whole != original)
        try Self.check(whole, source, seed: 2)
    }

    @Test("a file without markable tensors reads unchanged")
    func nothingToMark() throws {
        let bytes = try SafetensorsWriter.encode(
            [.init(name: "norm.weight", dtype: .f32, shape: [512], data: encode(weights(512, seed: 4), as: .f32))],
            metadata: [:])
        let source = MarkedSource(
            BufferSource(bytes), tensors: try SafetensorsFile(source: BufferSource(bytes)).tensors,
            marker: Marker(keys: [key(1)]))
        #expect(!source.marksAnything)
        #expect(try source.bytes(at: 0, count: bytes.count) == bytes)
    }
}
