"""Writes watermark test vectors from an implementation of docs/watermark.md ("Keys", "Chips",
"Embedding", "Quantized matrices") that shares no code with Sources/Watermark, so the Swift
implementation and the spec are checked against each other byte for byte.

    python3 -m venv /tmp/wv && /tmp/wv/bin/pip install numpy cryptography
    /tmp/wv/bin/python scripts/make-watermark-vectors.py > Tests/WatermarkTests/Vectors/watermark-v1.txt

Two files, each marked with an owner and a recipient key (in that order):
  - an F32 safetensors matrix: three Gaussian rows and one of large values with a tiny spread, so
    that moves under half a step take the random step of the spec;
  - a Q4_0 GGUF matrix of random codes and scales (one scale zero, one negative).
"""
import hashlib
import hmac
import json
import struct

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

f32 = np.float32


def role_key(key, role):
    return hmac.new(key, b"mvault watermark v1 role\0" + role.encode(), hashlib.sha256).digest()


def stream(rkey, row, purpose, count):
    nonce = struct.pack("<Q", row) + bytes([0, 0, 0, purpose])
    enc = Cipher(algorithms.ChaCha20(rkey, b"\0\0\0\0" + nonce), mode=None).encryptor()
    return enc.update(b"\0" * count)


def chips(rkey, row, n):
    bits = stream(rkey, row, 0, (n + 7) // 8)
    return [1 if (bits[j // 8] >> (j % 8)) & 1 else -1 for j in range(n)]


def words(rkey, row, purpose, n):
    return [w >> 8 for w in struct.unpack(f"<{n}I", stream(rkey, row, purpose, 4 * n))]


# ------------------------------------------------------------------------------- float rows
def moments_float(w):
    """Mean and σ in float: eight interleaved lanes, then the lanes in order, then the tail."""
    n = len(w)
    lanes = np.zeros(8, f32)
    body = n // 8 * 8
    for j in range(0, body, 8):
        lanes = (lanes + w[j : j + 8]).astype(f32)
    total = f32(0)
    for x in lanes:
        total = f32(total + x)
    for j in range(body, n):
        total = f32(total + w[j])
    mean = f32(total / f32(n))
    lanes = np.zeros(8, f32)
    for j in range(0, body, 8):
        d = (w[j : j + 8] - mean).astype(f32)
        lanes = (lanes + (d * d).astype(f32)).astype(f32)
    total = f32(0)
    for x in lanes:
        total = f32(total + x)
    for j in range(body, n):
        d = f32(w[j] - mean)
        total = f32(total + f32(d * d))
    return mean, f32(np.sqrt(f32(total / f32(n))))


FAR_GAIN = f32(f32(1.5) / f32(1.116))
NEAR_GAIN = f32(f32(1) / f32(1.116))


def mark_float_row(w, rkeys, row, strength):
    n = len(w)
    mean, sigma = moments_float(w)
    if not (sigma > 0 and np.isfinite(sigma)):
        return w
    s = np.zeros(n, f32)
    for rk in rkeys:
        s = (s + np.array(chips(rk, row, n), f32)).astype(f32)
    line = f32(f32(1.29) * sigma)
    for j in range(n):
        far = abs(f32(w[j] - mean)) > line
        s[j] = f32(s[j] * (FAR_GAIN if far else NEAR_GAIN))
    scale = f32(f32(strength) * sigma)
    u = None
    out = w.copy()
    for j in range(n):
        if s[j] == 0 or not np.isfinite(w[j]):
            continue
        delta = f32(scale * s[j])
        t = f32(w[j] + delta)
        if t != w[j]:
            out[j] = t
            continue
        # Under half a step: one step toward the move with probability |δ| / step.
        if u is None:
            u = [f32(x) / f32(16_777_216) for x in words(rkeys[0], row, 1, n)]
        nxt = np.nextafter(w[j], f32(np.inf) if delta > 0 else f32(-np.inf)).astype(f32)
        if np.isfinite(nxt) and u[j] < f32(abs(delta) / abs(f32(nxt - w[j]))):
            out[j] = nxt
    return out


def safetensors(name, rows, cols, data):
    header = json.dumps({name: {"dtype": "F32", "shape": [rows, cols], "data_offsets": [0, len(data)]}})
    header += " " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header.encode() + data


# ------------------------------------------------------------------------------- Q4_0 rows
def half(b):
    return float(np.frombuffer(b, "<f2")[0])


def q4_0_values(block):
    d = f32(half(block[0:2]))
    lows = [f32(d * f32(int(b & 0x0F) - 8)) for b in block[2:18]]
    highs = [f32(d * f32(int(b >> 4) - 8)) for b in block[2:18]]
    return lows + highs


def sparse_fraction(strength, typical):
    r = f32(f32(strength) / f32(typical))
    return min(f32(1), f32(r * r))


FAR_FACTOR = f32(f32(1.75) / f32(0.95))
NEAR_FACTOR = f32(f32(0.75) / f32(0.95))


def mark_q4_0_row(row_bytes, rkeys, row, strength):
    blocks = [row_bytes[i : i + 18] for i in range(0, len(row_bytes), 18)]
    w = [x for b in blocks for x in q4_0_values(b)]
    n = len(w)
    total = 0.0
    squares = 0.0
    for x in w:
        total += float(x)
        squares += float(x) * float(x)
    mean = total / n
    sigma = max(0.0, squares / n - mean * mean) ** 0.5
    far = [abs(float(x) - mean) > 1.29 * sigma for x in w]
    f = sparse_fraction(strength, 0.28)
    threshold = int(min(f32(1 << 24), np.ceil(f32(f32(f * FAR_FACTOR) * f32(16_777_216)))))
    out = bytearray(row_bytes)
    for rk in rkeys:
        c = chips(rk, row, n)
        for j, word in enumerate(words(rk, row, 2, n)):
            if word >= threshold:
                continue
            uniform = f32(word) / f32(16_777_216)
            if not uniform < f32(f * (FAR_FACTOR if far[j] else NEAR_FACTOR)):
                continue
            block, i = divmod(j, 32)
            at = block * 18
            d = f32(half(bytes(out[at : at + 2])))
            if d == 0 or not np.isfinite(d):
                continue
            byte = at + 2 + i % 16
            code = out[byte] & 0x0F if i < 16 else out[byte] >> 4
            move = 1 if (c[j] > 0) == (d > 0) else -1
            if not 0 <= code + move <= 15:
                move = -move
            code += move
            out[byte] = (out[byte] & 0xF0) | code if i < 16 else (out[byte] & 0x0F) | (code << 4)
    return bytes(out)


def gguf(name, rows, cols, data):
    def string(s):
        return struct.pack("<Q", len(s)) + s.encode()

    out = b"GGUF" + struct.pack("<IQQ", 3, 1, 0)
    out += string(name) + struct.pack("<I", 2) + struct.pack("<QQ", cols, rows) + struct.pack("<IQ", 2, 0)
    out += b"\0" * ((32 - len(out) % 32) % 32)
    return out + data


# ------------------------------------------------------------------------------- vectors
owner = hashlib.sha256(b"watermark vector owner").digest()
recipient = hashlib.sha256(b"watermark vector recipient").digest()
role = "blk.0.ffn_down"
name = role + ".weight"
rng = np.random.default_rng(2026)

rows, cols, strength = 4, 72, 0.01
matrix = rng.standard_normal((rows, cols)).astype(f32)
matrix[3] = (1000 + rng.standard_normal(cols) * 1e-3).astype(f32)
rkeys = [role_key(owner, role), role_key(recipient, role)]
marked = np.stack([mark_float_row(matrix[r], rkeys, r, strength) for r in range(rows)])
float_in = safetensors(name, rows, cols, matrix.tobytes())
float_out = safetensors(name, rows, cols, marked.astype("<f4").tobytes())

qrows, qcols, qstrength = 4, 64, 0.1
raw = bytearray(rng.integers(0, 256, qrows * qcols // 32 * 18, dtype=np.uint8).tobytes())
for b in range(qrows * qcols // 32):
    scale = [0.0, -0.02][b] if b < 2 else float(rng.uniform(0.005, 0.05))
    raw[b * 18 : b * 18 + 2] = np.array([scale], "<f2").tobytes()
row_bytes = qcols // 32 * 18
q_marked = b"".join(
    mark_q4_0_row(bytes(raw[r * row_bytes : (r + 1) * row_bytes]), rkeys, r, qstrength) for r in range(qrows)
)
quant_in = gguf(name, qrows, qcols, bytes(raw))
quant_out = gguf(name, qrows, qcols, q_marked)

print("# Watermark v1 test vectors. Generated by scripts/make-watermark-vectors.py from docs/watermark.md.")
print("# Each vector: keys (owner, then recipient) and strength, the input file and the file marked")
print("# with both keys, in hex. Lines: name, owner, recipient, strength, input, output, blank.")
for label, s, a, b in (
    ("f32-safetensors", strength, float_in, float_out),
    ("q4_0-gguf", qstrength, quant_in, quant_out),
):
    print(f"name {label}")
    print(f"owner {owner.hex()}")
    print(f"recipient {recipient.hex()}")
    print(f"strength {s}")
    print(f"input {a.hex()}")
    print(f"output {b.hex()}")
    print()
