/// A model file of either format, recognised by its first bytes.
public enum ModelFile {
    public enum Format: String, Sendable {
        case safetensors, gguf
    }

    /// The format and tensors of `source`, and the parsed GGUF file when it is one (its metadata
    /// says how rows were reordered).
    /// - Throws: `ModelFormatError` naming what is wrong, or that it is neither format.
    public static func open(_ source: some ByteSource) throws -> (
        format: Format, tensors: [TensorLayout], gguf: GGUFFile?
    ) {
        if source.size >= 4, try source.bytes(at: 0, count: 4) == Array("GGUF".utf8) {
            let file = try GGUFFile(source: source)
            return (.gguf, file.tensors, file)
        }
        if source.size >= 9, try source.bytes(at: 8, count: 1) == [UInt8(ascii: "{")] {
            return (.safetensors, try SafetensorsFile(source: source).tensors, nil)
        }
        throw ModelFormatError.unsupported(
            "neither a safetensors file (8-byte length, then a JSON header) nor a GGUF file (\"GGUF\" magic)")
    }
}
