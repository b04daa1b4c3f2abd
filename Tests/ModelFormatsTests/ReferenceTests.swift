import Crypto
import Foundation
import ModelFormats
import Testing

/// The project's venv interpreter (scripts/test installs numpy, safetensors and gguf there).
let python = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent(".venv/bin/python").path
let referenceScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("reference.py").path

/// Runs reference.py; its JSON output, if any.
@discardableResult
func reference(_ arguments: String...) throws -> [String: Any] {
    guard FileManager.default.isExecutableFile(atPath: python) else {
        throw ModelFormatError.io(
            "\(python) is missing: run scripts/test once, which makes .venv with numpy, safetensors and gguf")
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [referenceScript] + arguments
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw ModelFormatError.io("reference.py \(arguments) failed: \(String(decoding: errors, as: UTF8.self))")
    }
    if data.isEmpty { return [:] }
    return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
}

func temporaryFile(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("mvault-formats-\(UUID().uuidString)-\(name)").path
}

func sha256(_ bytes: some Sequence<UInt8>) -> String {
    SHA256.hash(data: Array(bytes)).map { String(format: "%02x", $0) }.joined()
}

/// Rewrites `path` to a new file, passing the rows of the tensors `select` picks to `transform`.
func rewrite(
    _ path: String, tensors: [TensorLayout], select: (TensorLayout) -> Bool,
    transform: (TensorLayout, Int, UnsafeMutableRawBufferPointer) throws -> Void
) throws -> String {
    let out = temporaryFile("rewritten")
    FileManager.default.createFile(atPath: out, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    defer { try? handle.close() }
    try ModelRewriter.rewrite(
        try FileSource(path: path), tensors: tensors, chunk: 64, select: select, transform: transform,
        sink: { handle.write(Data($0)) })
    return out
}

@Suite("Model formats against the official Python packages", .serialized)
struct ReferenceTests {
    @Test("safetensors written by Python: every tensor, shape, dtype and the metadata read alike")
    func safetensorsFromPython() throws {
        let path = temporaryFile("py.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try reference("make-safetensors", path)
        let expected = try reference("read-safetensors", path)
        let file = try SafetensorsFile(source: try FileSource(path: path))
        #expect(file.metadata == (expected["metadata"] as? [String: String]))
        let tensors = try #require(expected["tensors"] as? [String: [String: Any]])
        #expect(Set(file.tensors.map(\.name)) == Set(tensors.keys))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for t in file.tensors {
            let e = try #require(tensors[t.name])
            #expect(t.encoding.description == e["dtype"] as? String, "\(t.name)")
            #expect(t.shape == e["shape"] as? [Int], "\(t.name)")
            #expect(sha256(bytes[Int(t.bytes.lowerBound)..<Int(t.bytes.upperBound)]) == e["sha256"] as? String)
        }
    }

    @Test("a rewritten safetensors file loads in Python: changed rows changed, all else byte-identical")
    func safetensorsRewrite() throws {
        let path = temporaryFile("py.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try reference("make-safetensors", path)
        let before = try reference("read-safetensors", path)
        let file = try SafetensorsFile(source: try FileSource(path: path))
        let target = "model.layers.0.mlp.down_proj.weight"
        var seenRows: [Int] = []
        let out = try rewrite(path, tensors: file.tensors, select: { $0.name == target }) { tensor, first, rows in
            #expect(rows.count % (tensor.rowLength * 4) == 0)
            seenRows.append(first)
            for i in stride(from: 0, to: rows.count, by: 4) {
                let v = Float(bitPattern: rows.loadUnaligned(fromByteOffset: i, as: UInt32.self)) + 1
                rows.storeBytes(of: v.bitPattern, toByteOffset: i, as: UInt32.self)
            }
        }
        defer { try? FileManager.default.removeItem(atPath: out) }
        // 64-byte pieces of 64-byte rows: one row at a time, all 8 of them, in order.
        #expect(seenRows == Array(0..<8))
        let after = try reference("read-safetensors", out)
        #expect(after["metadata"] as? [String: String] == before["metadata"] as? [String: String])
        let old = try #require(before["tensors"] as? [String: [String: Any]])
        let new = try #require(after["tensors"] as? [String: [String: Any]])
        for (name, t) in old {
            let changed = (t["sha256"] as? String) != (new[name]?["sha256"] as? String)
            #expect(changed == (name == target), "\(name)")
            #expect(new[name]?["shape"] as? [Int] == t["shape"] as? [Int])
        }
        // The header is copied byte for byte, and the values moved by exactly +1.
        let a = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(a.count == b.count && a[..<Int(file.dataStart)] == b[..<Int(file.dataStart)])
        let t = try #require(file.tensors.first { $0.name == target })
        var x: [Float] = []
        var y: [Float] = []
        try a[Int(t.bytes.lowerBound)..<Int(t.bytes.upperBound)].withUnsafeBytes {
            try Dequantize.append($0, as: t.encoding, to: &x)
        }
        try b[Int(t.bytes.lowerBound)..<Int(t.bytes.upperBound)].withUnsafeBytes {
            try Dequantize.append($0, as: t.encoding, to: &y)
        }
        #expect(zip(x, y).allSatisfy { $1 == $0 + 1 })
    }

    @Test("safetensors written here load in Python, every dtype of the specification")
    func safetensorsToPython() throws {
        var tensors: [SafetensorsWriter.Tensor] = []
        for (i, dtype) in SafetensorsDType.allCases.enumerated() {
            let shape = [2, 4]
            let count = 8 * dtype.bits / 8
            tensors.append(
                .init(
                    name: "t\(i).\(dtype.rawValue)", dtype: dtype, shape: shape,
                    data: (0..<count).map { UInt8(($0 * 7 + i) & 0xFF) }))
        }
        let bytes = try SafetensorsWriter.encode(tensors, metadata: ["owner": "acme", "quote": "say \"hi\""])
        let path = temporaryFile("swift.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let loaded = try reference("read-safetensors", path)
        #expect(loaded["metadata"] as? [String: String] == ["owner": "acme", "quote": "say \"hi\""])
        let read = try #require(loaded["tensors"] as? [String: [String: Any]])
        for t in tensors {
            #expect(read[t.name]?["dtype"] as? String == t.dtype.rawValue)
            #expect(read[t.name]?["sha256"] as? String == sha256(t.data))
        }
        // And it parses back here.
        let file = try SafetensorsFile(source: BufferSource(bytes))
        #expect(file.tensors.map(\.name) == tensors.map(\.name))
        #expect(file.dataStart % 8 == 0)
    }

    @Test("GGUF written by Python: metadata, tensor infos and dequantized values agree")
    func ggufFromPython() throws {
        let path = temporaryFile("py.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try reference("make-gguf", path)
        let expected = try reference("read-gguf", path)
        let file = try GGUFFile(source: try FileSource(path: path))
        #expect(file.version == 3)
        let metadata = try #require(expected["metadata"] as? [String: Any])
        #expect(Set(file.metadata.map(\.key)) == Set(metadata.keys))
        #expect(file.value("test.u32") == .uint32(4_000_000_000))
        #expect(file.value("test.i64") == .int64(-(1 << 40)))
        #expect(file.value("test.f64") == .float64(1.0 / 3.0))
        #expect(file.value("test.string") == .string("héllo"))
        #expect(file.value("test.bool") == .bool(true))
        #expect(file.value("test.strings") == .array(8, [.string("a"), .string("bc"), .string("")]))
        let tensors = try #require(expected["tensors"] as? [String: [String: Any]])
        #expect(Set(file.tensors.map(\.name)) == Set(tensors.keys))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for t in file.tensors {
            let e = try #require(tensors[t.name])
            #expect(t.encoding.description == e["type"] as? String, "\(t.name)")
            #expect(Array(t.shape.reversed()) == e["ne"] as? [Int], "\(t.name)")
            #expect(Int(t.bytes.lowerBound) == e["offset"] as? Int, "\(t.name)")
            let data = bytes[Int(t.bytes.lowerBound)..<Int(t.bytes.upperBound)]
            #expect(sha256(data) == e["sha256"] as? String, "\(t.name)")
            var values: [Float] = []
            try data.withUnsafeBytes { try Dequantize.append($0, as: t.encoding, to: &values) }
            let reference = try #require(e["values"] as? [Double]).map(Float.init)
            #expect(values.count == reference.count, "\(t.name)")
            let worst = zip(values, reference).map { abs($0 - $1) / max(1e-3, abs($1)) }.max() ?? 0
            #expect(worst < 1e-5, "\(t.name): largest relative difference \(worst)")
        }
    }

    @Test("a rewritten GGUF loads in Python: the changed tensor changed, all else byte-identical")
    func ggufRewrite() throws {
        let path = temporaryFile("py.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try reference("make-gguf", path)
        let before = try reference("read-gguf", path)
        let file = try GGUFFile(source: try FileSource(path: path))
        let out = try rewrite(path, tensors: file.tensors, select: { $0.name == "q8_0.weight" }) { _, _, rows in
            // One step up on the first quant of every block.
            for block in stride(from: 0, to: rows.count, by: 34) { rows[block + 2] &+= 1 }
        }
        defer { try? FileManager.default.removeItem(atPath: out) }
        let after = try reference("read-gguf", out)
        let old = try #require(before["tensors"] as? [String: [String: Any]])
        let new = try #require(after["tensors"] as? [String: [String: Any]])
        for (name, t) in old {
            let changed = (t["sha256"] as? String) != (new[name]?["sha256"] as? String)
            #expect(changed == (name == "q8_0.weight"), "\(name)")
        }
        func canonical(_ object: Any?) throws -> Data {
            try JSONSerialization.data(withJSONObject: object ?? [:], options: [.sortedKeys])
        }
        #expect(try canonical(after["metadata"]) == canonical(before["metadata"]))
        let a = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(a.count == b.count && a[..<Int(file.dataStart)] == b[..<Int(file.dataStart)])
    }

    @Test("ggml block sizes and type sizes match the gguf package's table")
    func ggmlTypes() throws {
        let table = try reference("gguf-types")
        var checked = 0
        for (name, value) in table {
            let sizes = try #require(value as? [Int])
            guard
                let type = (0..<64).compactMap({ GGMLType(rawValue: UInt32($0)) }).first(where: {
                    $0.description == name
                })
            else {
                Issue.record("ggml type \(name) is unknown here")
                continue
            }
            #expect([type.blockSize, type.typeSize] == sizes, "\(name)")
            checked += 1
        }
        #expect(checked >= 30)
    }
}
