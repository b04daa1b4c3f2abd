#!/usr/bin/env python3
"""Write the quickstart's sample model: a small Llama-shaped safetensors file (F16, about 7 MB)
with Gaussian weights and its config.json, large enough to carry a fingerprint that `mvault
trace` finds. Deterministic: the same bytes on every machine. Only the standard library.

Usage: scripts/make-sample-model.py OUT_DIR
"""
import json
import os
import random
import struct
import sys

HIDDEN, INTERMEDIATE, LAYERS, VOCAB = 256, 768, 4, 1024


def tensors():
    """(name, shape, standard deviation) in the order the file stores them."""
    yield "model.embed_tokens.weight", [VOCAB, HIDDEN], 0.02
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", [HIDDEN], 0.0
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield p + f"self_attn.{proj}.weight", [HIDDEN, HIDDEN], 0.02
        yield p + "post_attention_layernorm.weight", [HIDDEN], 0.0
        yield p + "mlp.gate_proj.weight", [INTERMEDIATE, HIDDEN], 0.02
        yield p + "mlp.up_proj.weight", [INTERMEDIATE, HIDDEN], 0.02
        yield p + "mlp.down_proj.weight", [HIDDEN, INTERMEDIATE], 0.02
    yield "model.norm.weight", [HIDDEN], 0.0


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-sample-model.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20261207)
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, shape, sigma in tensors():
        count = 1
        for n in shape:
            count *= n
        # Norm weights are ones, as a freshly initialised model has them.
        values = [1.0] * count if sigma == 0 else [rng.gauss(0.0, sigma) for _ in range(count)]
        data = struct.pack(f"<{count}e", *values)
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for data in chunks:
            f.write(data)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": VOCAB,
        "torch_dtype": "float16",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
