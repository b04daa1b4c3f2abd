import ModelFormats

/// Maps a tensor's stored row to its canonical row (Hugging Face order), for files whose
/// converter reordered rows: llama.cpp's converter for the `llama` architecture permutes the rows
/// of every `attn_q` and `attn_k` matrix, head by head, to interleave the two halves rotary
/// embedding pairs (`permute` in convert_hf_to_gguf.py). Chips follow the canonical row, so a
/// mark made in a safetensors file is found in its GGUF conversion and the other way round.
public struct RowOrder: Sendable {
    /// Heads of each permuted role.
    let heads: [String: Int]

    public static let identity = RowOrder(heads: [:])

    init(heads: [String: Int]) { self.heads = heads }

    /// The row order of a GGUF file, from its architecture and head counts.
    public init(gguf: GGUFFile) {
        guard case .string(let arch) = gguf.value("general.architecture"), arch == "llama",
            let queryHeads = Self.integer(gguf.value("\(arch).attention.head_count")), queryHeads > 0
        else {
            self = .identity
            return
        }
        let keyHeads = Self.integer(gguf.value("\(arch).attention.head_count_kv")) ?? queryHeads
        var heads: [String: Int] = [:]
        for t in gguf.tensors {
            let role = TensorRole.of(t.name)
            if role.hasSuffix(".attn_q") { heads[role] = queryHeads }
            if role.hasSuffix(".attn_k") { heads[role] = keyHeads }
        }
        self.heads = heads
    }

    /// The canonical index of stored row `row` of `tensor` (of `rows` rows).
    public func canonical(role: String, row: Int, rows: Int) -> Int {
        guard let h = heads[role], h > 0, rows % (2 * h) == 0 else { return row }
        // Stored row h·d + 2i + s holds canonical row h·d + s·d/2 + i (d = rows per head).
        let d = rows / h
        let (head, rest) = (row / d, row % d)
        return head * d + (rest % 2) * (d / 2) + rest / 2
    }

    static func integer(_ value: GGUFValue?) -> Int? {
        switch value {
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(v)
        case .int64(let v): Int(v)
        case .uint16(let v): Int(v)
        case .uint8(let v): Int(v)
        default: nil
        }
    }
}
