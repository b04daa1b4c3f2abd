/// A model file of either format, recognised by its first bytes.
public enum ModelFile {
    public enum Format: String, Sendable {
        case safetensors, gguf
    }

    /// The parsed GGUF file, when `source` is one (its metadata says how rows were reordered).
    public static func gguf(_ source: some ByteSource) throws -> GGUFFile? {
        guard source.size >= 4, try source.bytes(at: 0, count: 4) == Array("GGUF".utf8) else { return nil }
        return try GGUFFile(source: source)
    }

    /// The format and tensors of `source`.
    /// - Throws: `ModelFormatError` naming what is wrong, or that it is neither format.
    public static func tensors(of source: some ByteSource) throws -> (format: Format, tensors: [TensorLayout]) {
        if source.size >= 4, try source.bytes(at: 0, count: 4) == Array("GGUF".utf8) {
            return (.gguf, try GGUFFile(source: source).tensors)
        }
        if source.size >= 9, try source.bytes(at: 8, count: 1) == [UInt8(ascii: "{")] {
            return (.safetensors, try SafetensorsFile(source: source).tensors)
        }
        throw ModelFormatError.unsupported(
            "neither a safetensors file (8-byte length, then a JSON header) nor a GGUF file (\"GGUF\" magic)")
    }
}
