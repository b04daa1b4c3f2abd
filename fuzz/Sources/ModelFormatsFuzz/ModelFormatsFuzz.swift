import FuzzDriver
import ModelFormats

/// libFuzzer entry point for the safetensors and GGUF parsers (model files are uploaded by
/// users and, later, by whoever hands in a suspect copy).
///
/// The first byte picks the parser (even: safetensors, odd: GGUF); the rest is the file.
/// Invariants checked on every file a parser accepts: each tensor lies inside the file and none
/// overlap; dequantizing a supported tensor yields one value per element; and rewriting the file
/// with a transform that changes nothing reproduces it byte for byte.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let source = BufferSource(Array(UnsafeBufferPointer(start: data + 1, count: size - 1)))
    let tensors: [TensorLayout]
    if data[0] % 2 == 0 {
        guard let file = try? SafetensorsFile(source: source) else { return 0 }
        tensors = file.tensors
    } else {
        guard let file = try? GGUFFile(source: source) else { return 0 }
        tensors = file.tensors
    }
    let ordered = tensors.sorted { $0.bytes.lowerBound < $1.bytes.lowerBound }
    for (a, b) in zip(ordered, ordered.dropFirst()) { precondition(a.bytes.upperBound <= b.bytes.lowerBound) }
    for t in tensors {
        precondition(t.bytes.upperBound <= source.size)
        guard Dequantize.supports(t.encoding), t.bytes.count <= 1 << 16 else { continue }
        var values: [Float] = []
        source.data[Int(t.bytes.lowerBound)..<Int(t.bytes.upperBound)].withUnsafeBytes {
            try! Dequantize.append($0, as: t.encoding, to: &values)
        }
        precondition(values.count == t.elementCount, "\(t.name): \(values.count) values for \(t.elementCount) elements")
    }
    var out: [UInt8] = []
    try! ModelRewriter.rewrite(
        source, tensors: tensors, chunk: 256, select: { _ in true }, transform: { _, _, _ in },
        sink: { out += $0 })
    precondition(out == source.data, "an unchanged rewrite differs from its input")
    return 0
}

/// SwiftPM links an executable target's entry point as `ModelFormatsFuzz_main`; hand control to libFuzzer.
@_cdecl("ModelFormatsFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    runLibFuzzer(argc, argv) { fuzzOne($0, $1) }
}
