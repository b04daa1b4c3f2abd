"""Watermark evaluation on real weights (see bench/watermark-eval.sh, which sets everything up).

Marks all-MiniLM-L6-v2 (safetensors, F32) and SmolLM2-135M-Instruct (GGUF, Q4_1) with the
release `mvault watermark`, attacks the marked copies with numpy, and prints blind z for each
attack, the MiniLM sentence-embedding cosine to the unmarked model, and a false-positive run.
Usage: watermark_eval.py MVAULT MINILM_DIR SMOLLM_GGUF WORKDIR [WRONG_KEYS]
"""
import os
import re
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

MV, MINILM, SMOL, W = sys.argv[1:5]
WRONG = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
rng = np.random.default_rng(2026)


def key(name):
    path = os.path.join(W, name + ".key")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
    return path


def embed(src, dst, key_name, strength=None):
    args = [MV, "watermark", "embed", src, "--key", key(key_name), "-o", dst]
    if strength:
        args += ["--strength", str(strength)]
    if os.path.exists(dst):
        os.remove(dst)
    subprocess.run(args, check=True, capture_output=True)


def z(path, key_name, original=None):
    args = [MV, "watermark", "detect", path, "--key", key(key_name)]
    if original:
        args += ["--original", original]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode not in (0, 3):
        raise SystemExit(out.stderr)
    if original:
        return float(re.search(r"^z:\s+(-?[\d.]+)", out.stdout, re.M).group(1))
    dense = float(re.search(r"z dense:\s+(-?[\d.]+)", out.stdout).group(1))
    sparse = [float(x) for x in re.search(r"z sparse:\s+([-\d., ]+)", out.stdout).group(1).split(", ")]
    return max([dense] + sparse)


def markable(name, a):
    return a.ndim == 2 and a.shape[1] >= 16 and "embeddings" not in name and "token_embd" not in name


# ---------------------------------------------------------------- MiniLM forward pass
SENTENCES = [
    "The vault keeps model weights encrypted at rest.", "A stolen copy can be traced to its recipient.",
    "Quantization reduces the precision of each weight.", "The cat sat on the mat.",
    "Rain is expected tomorrow in the afternoon.", "Stock markets fell sharply on Monday.",
    "She plays the violin in an orchestra.", "The recipe calls for two cups of flour.",
    "Neural networks learn representations from data.", "He forgot his umbrella at the station.",
    "Transformers use attention to mix information.", "The museum opens at nine every morning.",
    "Solar panels convert sunlight into electricity.", "The children built a sandcastle on the beach.",
    "Encryption keys must never be stored in plain text.", "The committee approved the new budget.",
    "A marathon is forty-two kilometres long.", "Coffee prices rose because of a poor harvest.",
    "The spacecraft entered orbit around Mars.", "Please send the report by Friday.",
    "Mountains were covered in fresh snow.", "The library lends books and music.",
    "Security engineers review access logs daily.", "The train was delayed by twenty minutes.",
    "Bees are essential for pollinating crops.", "The new phone has a larger battery.",
    "He painted the fence a bright shade of green.", "Doctors recommend regular exercise.",
    "The password must be at least twelve characters.", "A river flows through the old town.",
    "The startup raised money from investors.", "Birds migrate south for the winter.",
    "The algorithm sorts the list in linear time.", "Fresh bread smells wonderful in the morning.",
    "The court will announce its decision next week.", "Wind turbines spin faster in a storm.",
    "She learned to speak three languages fluently.", "The model was fine-tuned on legal documents.",
    "Tickets for the concert sold out quickly.", "The bridge was closed for repairs.",
    "An audit log records every access to the model.", "The garden is full of tomatoes this year.",
]


def minilm_encoder(tensors):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc]).astype(np.float32)

    def ln(x, p):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-12) * tensors[p + ".weight"] + tensors[p + ".bias"]

    def lin(x, p):
        return x @ tensors[p + ".weight"].T + tensors[p + ".bias"]

    from math import erf, sqrt

    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / sqrt(2))), otypes=[np.float32])
    L = ids.shape[1]
    x = tensors["embeddings.word_embeddings.weight"][ids] + tensors["embeddings.position_embeddings.weight"][:L]
    x = ln(x + tensors["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    bias = (1 - mask)[:, None, None, :] * -1e9
    for i in range(6):
        p = f"encoder.layer.{i}."
        B = x.shape[0]
        q, k, v = (lin(x, p + "attention.self." + n).reshape(B, L, 12, 32).transpose(0, 2, 1, 3) for n in ("query", "key", "value"))
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32) + bias
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(B, L, 384)
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = gelu(lin(x, p + "intermediate.dense"))
        x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
    pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def cosine(reference, tensors):
    e = minilm_encoder(tensors)
    c = (reference * e).sum(1)
    return f"{c.mean():.6f} (min {c.min():.6f})"


# ---------------------------------------------------------------- attacks (float arrays)
def bf16(a):
    b = a.astype(np.float32).view(np.uint32)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    return b.astype(np.uint32).view(np.float32)


def requant(a, qtype):
    import gguf

    return gguf.quants.dequantize(gguf.quants.quantize(a.astype(np.float32), qtype), qtype).reshape(a.shape)


def attack(tensors, fn):
    return {n: (fn(a).astype(np.float32) if markable(n, a) else a) for n, a in tensors.items()}


def prune(frac):
    def f(a):
        t = np.quantile(np.abs(a), frac)
        return np.where(np.abs(a) < t, 0, a)

    return f


def noise(s):
    return lambda a: a + rng.standard_normal(a.shape).astype(np.float32) * a.std(1, keepdims=True) * s


def int8(a):
    scale = np.abs(a).max() / 127
    return np.round(a / scale).clip(-127, 127) * scale


def attacks():
    import gguf

    Q = gguf.GGMLQuantizationType
    return [
        ("cast to fp16", lambda a: a.astype(np.float16).astype(np.float32)),
        ("cast to bf16", bf16),
        ("int8 per-tensor", int8),
        ("Q8_0 re-quantization", lambda a: requant(a, Q.Q8_0)),
        ("Q4_0 re-quantization", lambda a: requant(a, Q.Q4_0)),
        ("50 % magnitude pruning", prune(0.5)),
        ("90 % magnitude pruning", prune(0.9)),
        ("Gaussian noise 0.1 σ", noise(0.1)),
        ("Gaussian noise 0.5 σ", noise(0.5)),
        ("Gaussian noise 1 σ", noise(1.0)),
    ]


def save(tensors, name):
    path = os.path.join(W, name)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path)
    return path


# ---------------------------------------------------------------- MiniLM
print("## all-MiniLM-L6-v2 (safetensors, F32)\n")
orig_path = os.path.join(MINILM, "model.safetensors")
original = load_file(orig_path)
reference = minilm_encoder(original)
marked_weights = sum(a.size for n, a in original.items() if markable(n, a))
print(f"marked weights: {marked_weights:,}\n")

print("| α (each mark) | owner z | recipient z | embedding cosine to unmarked, mean of 42 sentences (min) |")
print("|---:|---:|---:|---:|")
for alpha in (0.002, 0.0036, 0.0037, 0.004, 0.008, 0.016):
    a = os.path.join(W, f"minilm-owner-{alpha}.safetensors")
    b = os.path.join(W, f"minilm-r1-{alpha}.safetensors")
    embed(orig_path, a, "owner", alpha)
    embed(a, b, "r1", alpha)
    print(f"| {alpha} | {z(b, 'owner'):.1f} | {z(b, 'r1'):.1f} | {cosine(reference, load_file(b))} |")
q8 = attack(original, lambda a: requant(a, __import__("gguf").GGMLQuantizationType.Q8_0))
print(f"| Q8_0 rounding alone (reference) | | | {cosine(reference, q8)} |\n")

alpha = 0.0037  # Watermarking.defaultStrength
a = os.path.join(W, "minilm-owner.safetensors")
marked_path = os.path.join(W, "minilm-marked.safetensors")
embed(orig_path, a, "owner", alpha)
embed(a, marked_path, "r1", alpha)
marked = load_file(marked_path)
clean = z(marked_path, "r1")
print(f"At α = {alpha}: recipient z clean = {clean:.1f}\n")
print("| attack | recipient z | × clean | owner z | recipient z, informed (original at hand) |")
print("|---|---:|---:|---:|---:|")
for name, fn in attacks():
    p = save(attack(marked, fn), "minilm-attacked.safetensors")
    zr = z(p, "r1")
    print(f"| {name} | {zr:.1f} | {zr / clean:.2f} | {z(p, 'owner'):.1f} | {z(p, 'r1', orig_path):.1f} |")

# FFN neuron permutation: the hidden units of each layer reordered (rows of intermediate.dense and
# its bias, columns of output.dense) — the model computes exactly the same function.
permuted = dict(marked)
for i in range(6):
    p = f"encoder.layer.{i}."
    perm = rng.permutation(1536)
    permuted[p + "intermediate.dense.weight"] = marked[p + "intermediate.dense.weight"][perm]
    permuted[p + "intermediate.dense.bias"] = marked[p + "intermediate.dense.bias"][perm]
    permuted[p + "output.dense.weight"] = np.ascontiguousarray(marked[p + "output.dense.weight"][:, perm])
pp = save(permuted, "minilm-permuted.safetensors")
out = subprocess.run(
    [MV, "watermark", "detect", pp, "--key", key("r1"), "--original", orig_path, "--realign"], capture_output=True, text=True
)
zr = float(re.search(r"^z:\s+(-?[\d.]+)", out.stdout, re.M).group(1))
print(f"| FFN neuron permutation (cosine {cosine(reference, permuted)}) | {z(pp, 'r1'):.1f} | | {z(pp, 'owner'):.1f} | {zr:.1f} (re-aligned) |")

# Collusion: average the copies of n recipients (each with the owner mark).
for n in (2, 4, 8):
    copies = []
    for i in range(n):
        pa = os.path.join(W, f"minilm-c{i}.safetensors")
        embed(a, pa, f"c{i}", alpha)
        copies.append(load_file(pa))
    avg = {k: (np.mean([c[k] for c in copies], axis=0) if markable(k, v) else v) for k, v in copies[0].items()}
    p = save(avg, "minilm-avg.safetensors")
    zs = [z(p, f"c{i}") for i in range(n)]
    zi = [z(p, f"c{i}", orig_path) for i in range(n)]
    print(
        f"| average of {n} recipients' copies | min {min(zs):.1f}, max {max(zs):.1f} | {min(zs) / clean:.2f} "
        f"| {z(p, 'owner'):.1f} | min {min(zi):.1f}, max {max(zi):.1f} |"
    )

zs = [0.0]
for i in range(WRONG):
    path = os.path.join(W, "wrong.key")
    with open(path, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    out = subprocess.run([MV, "watermark", "detect", marked_path, "--key", path], capture_output=True, text=True)
    vals = [float(x) for x in re.findall(r"z (?:dense|sparse):\s+([-\d., ]+)", out.stdout)[0].split(", ")]
    zs.append(max(vals))
print(f"\nFalse positives: {WRONG} random wrong keys on the marked MiniLM: max z {max(zs):.2f}, "
      f"mean {np.mean(zs):.2f}, above 5.3: {sum(v >= 5.3 for v in zs)}\n")

# ---------------------------------------------------------------- SmolLM2
print("## SmolLM2-135M-Instruct (GGUF, Q4_1)\n")
smol_marked = os.path.join(W, "smol-marked.gguf")
embed(SMOL, smol_marked, "s1")
a_bytes = np.fromfile(SMOL, dtype=np.uint8)
b_bytes = np.fromfile(smol_marked, dtype=np.uint8)
changed = int((a_bytes != b_bytes).sum())
print(f"bytes changed by the recipient mark: {changed:,} (each one code moved one step)")
clean = z(smol_marked, "s1")
print(f"recipient z clean = {clean:.1f}; unmarked file: {z(SMOL, 's1'):.1f}\n")

import gguf

reader = gguf.GGUFReader(smol_marked)


def field(name):
    f = reader.fields[name]
    return int(f.parts[f.data[0]][0])


heads, kv_heads = field("llama.attention.head_count"), field("llama.attention.head_count_kv")


def unpermute(w, n_head):
    # The inverse of llama.cpp's Q/K row permutation, as transformers' GGUF loader applies it.
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_floats(path):
    """Every tensor of a GGUF file dequantized to F32, Q/K rows in Hugging Face order."""
    out = {}
    for t in gguf.GGUFReader(path).tensors:
        values = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32)
        values = values.reshape(tuple(int(d) for d in reversed(t.shape)))
        if t.name.endswith("attn_q.weight"):
            values = unpermute(values, heads)
        elif t.name.endswith("attn_k.weight"):
            values = unpermute(values, kv_heads)
        out[t.name] = values
    return out


floats = gguf_floats(smol_marked)
print("| attack (on the dequantized copy) | recipient z | × clean |")
print("|---|---:|---:|")
p = save(floats, "smol-f32.safetensors")
zr = z(p, "s1")
print(f"| dequantized to F32, Q/K rows in Hugging Face order (a GGUF → safetensors conversion) | {zr:.1f} | {zr / clean:.2f} |")
for name, fn in attacks():
    p = save(attack(floats, fn), "smol-attacked.safetensors")
    zr = z(p, "s1")
    print(f"| {name} | {zr:.1f} | {zr / clean:.2f} |")

# FFN neuron permutation of every layer (rows of ffn_gate and ffn_up, columns of ffn_down): the
# model computes the same function; informed detection re-aligns against the unmarked original
# converted the same way.
smol_original = save(gguf_floats(SMOL), "smol-original-f32.safetensors")
permuted = dict(floats)
for name in floats:
    if name.endswith("ffn_gate.weight"):
        prefix = name[: -len("ffn_gate.weight")]
        perm = rng.permutation(floats[name].shape[0])
        for part in ("ffn_gate.weight", "ffn_up.weight"):
            permuted[prefix + part] = np.ascontiguousarray(floats[prefix + part][perm])
        permuted[prefix + "ffn_down.weight"] = np.ascontiguousarray(floats[prefix + "ffn_down.weight"][:, perm])
pp = save(permuted, "smol-permuted.safetensors")
out = subprocess.run(
    [MV, "watermark", "detect", pp, "--key", key("s1"), "--original", smol_original, "--realign"],
    capture_output=True, text=True,
)
zr = float(re.search(r"^z:\s+(-?[\d.]+)", out.stdout, re.M).group(1))
print(f"| FFN neuron permutation, all layers | {z(pp, 's1'):.1f} blind, {zr:.1f} informed (re-aligned) | |")

# Collusion: the element-wise mean of two recipients' dequantized copies.
smol_marked2 = os.path.join(W, "smol-marked2.gguf")
embed(SMOL, smol_marked2, "s2")
second = gguf_floats(smol_marked2)
avg = {k: ((v + second[k]) / 2 if markable(k, v) else v) for k, v in floats.items()}
p = save(avg, "smol-avg.safetensors")
z1, z2 = z(p, "s1"), z(p, "s2")
print(f"| average of 2 recipients' copies | {z1:.1f} and {z2:.1f} (blind) | {min(z1, z2) / clean:.2f} |")
