"""The official Python readers and writers, for ModelFormatsTests to compare against.

    reference.py make-safetensors OUT          numpy tensors of several dtypes, with __metadata__
    reference.py read-safetensors FILE         JSON: metadata, and per tensor dtype, shape, sha256
    reference.py make-gguf OUT                 metadata of every value type, tensors of every
                                               type ModelFormats dequantizes
    reference.py read-gguf FILE                JSON: metadata, tensor infos, sha256 of each
                                               tensor's bytes, and its dequantized values
    reference.py gguf-types                    JSON: ggml type -> [block size, type size]
"""
import hashlib
import json
import sys

import numpy as np


def sha(b):
    return hashlib.sha256(bytes(b)).hexdigest()


def make_safetensors(out):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    tensors = {
        "model.layers.0.mlp.down_proj.weight": rng.standard_normal((8, 16)).astype(np.float32),
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((16, 16)).astype(np.float16),
        "model.norm.weight": rng.standard_normal((16,)).astype(np.float32),
        "lm_head.bias": rng.standard_normal((4,)).astype(np.float64),
        "ids": np.arange(12, dtype=np.int64).reshape(3, 4),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(5, dtype=np.uint8),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.int32),
    }
    save_file(tensors, out, metadata={"format": "pt", "owner": "acme", "note": "ünïcode ✓"})


def read_safetensors(path):
    from safetensors import deserialize

    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    tensors = {
        name: {"dtype": t["dtype"], "shape": t["shape"], "sha256": sha(t["data"])}
        for name, t in deserialize(data)
    }
    print(json.dumps({"metadata": header.get("__metadata__"), "tensors": tensors}, sort_keys=True))


def make_gguf(out):
    import gguf
    from gguf import GGMLQuantizationType as Q

    rng = np.random.default_rng(11)
    w = gguf.GGUFWriter(out, "llama")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -5)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -300)
    w.add_uint32("test.u32", 4_000_000_000)
    w.add_int32("test.i32", -70000)
    w.add_float32("test.f32", 0.25)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo")
    w.add_uint64("test.u64", 2**60)
    w.add_int64("test.i64", -(2**40))
    w.add_float64("test.f64", 1.0 / 3.0)
    w.add_array("test.strings", ["a", "bc", ""])
    w.add_array("test.ints", [1, 2, 3])
    w.add_context_length(2048)

    def block_bytes(qtype, rows, cols):
        # Random quant bytes with a sane f16 scale (and min) at the block's start.
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
        scales = rng.uniform(0.001, 0.05, size=(rows, cols // block, 2)).astype(np.float16).view(np.uint8)
        if qtype == Q.Q6_K:
            raw[..., 208:210] = scales[..., 0:2]
        else:
            raw[..., 0:4] = scales
        return raw.reshape(rows, cols // block * size)

    x = rng.standard_normal((4, 64)).astype(np.float32)
    w.add_tensor("f32.weight", x)
    w.add_tensor("f16.weight", x.astype(np.float16))
    w.add_tensor("bf16.weight", gguf.quants.quantize(x, Q.BF16), raw_dtype=Q.BF16)
    for q in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
        w.add_tensor(f"{q.name.lower()}.weight", gguf.quants.quantize(x, q), raw_dtype=q)
    for q in (Q.Q4_K, Q.Q6_K):
        w.add_tensor(f"{q.name.lower()}.weight", block_bytes(q, 2, 512), raw_dtype=q)
    w.add_tensor("norm.weight", rng.standard_normal(64).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def plain(v):
    if isinstance(v, (bytes, bytearray)):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return [plain(i) for i in v]
    return v


def read_gguf(path):
    import gguf

    r = gguf.GGUFReader(path)
    metadata = {}
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        metadata[f.name] = plain(f.contents())
    tensors = {}
    for t in r.tensors:
        data = np.asarray(t.data)
        values = gguf.quants.dequantize(data, t.tensor_type).astype(np.float32).reshape(-1)
        tensors[t.name] = {
            "type": t.tensor_type.name,
            "ne": [int(d) for d in t.shape],
            "offset": int(t.data_offset),
            "sha256": sha(data.tobytes()),
            "values": [float(v) for v in values],
        }
    print(json.dumps({"metadata": metadata, "tensors": tensors}, sort_keys=True))


def gguf_types():
    import gguf

    print(json.dumps({t.name: list(gguf.GGML_QUANT_SIZES[t]) for t in gguf.GGMLQuantizationType}))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {
        "make-safetensors": make_safetensors,
        "read-safetensors": read_safetensors,
        "make-gguf": make_gguf,
        "read-gguf": read_gguf,
        "gguf-types": gguf_types,
    }[cmd](*args)
