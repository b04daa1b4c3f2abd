/// The role a weight matrix plays in a transformer, named the same whatever the file format
/// calls it, so chips follow the weight through renaming between safetensors (Hugging Face
/// names) and GGUF (llama.cpp names). Layers keep their number: `blk.3.attn_q`.
public enum TensorRole {
    /// The canonical role of `name`: llama.cpp's naming, without the `.weight` suffix.
    public static func of(_ name: String) -> String {
        var parts = name.split(separator: ".").map(String.init)
        if parts.last == "weight" { parts.removeLast() }
        // Wrappers some exporters put in front (sentence-transformers, PEFT, plain BERT).
        while let first = parts.first,
            ["model", "bert", "transformer", "encoder", "0", "auto_model", "base_model"].contains(first),
            parts.count > 1
        {
            parts.removeFirst()
        }
        if parts.first == "embed_tokens" || parts == ["embeddings", "word_embeddings"] { return "token_embd" }
        if parts == ["lm_head"] { return "output" }
        if parts == ["embeddings", "position_embeddings"] { return "position_embd" }
        if parts == ["embeddings", "token_type_embeddings"] { return "token_types" }
        if parts.count >= 3, ["layers", "layer", "h"].contains(parts[0]), let layer = Int(parts[1]) {
            let rest = parts[2...].joined(separator: ".")
            let mapped =
                [
                    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                    "mlp.down_proj": "ffn_down", "attention.self.query": "attn_q", "attention.self.key": "attn_k",
                    "attention.self.value": "attn_v", "attention.output.dense": "attn_output",
                    "intermediate.dense": "ffn_up", "output.dense": "ffn_down",
                ][rest] ?? rest
            return "blk.\(layer).\(mapped)"
        }
        return parts.joined(separator: ".")
    }
}
