#!/usr/bin/env python3
"""Writes the MVLT v1 test vectors from an implementation of docs/format.md that is
independent of the Swift code (pyca/cryptography). Deterministic: run it again and the
output is byte-identical.

    python3 scripts/make-format-vectors.py > Tests/SealedFormatTests/Vectors/mvlt-v1.txt
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TAG = 16
HEADER = 132


def det(label, n):
    """Deterministic 'random' bytes for reproducible vectors."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


def hkdf(key, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def prefix(seg, nonce_prefix, reserved=0, version=1, algorithm=1):
    return b"MVLT" + bytes([version, algorithm, 0, 0]) + struct.pack(">I", seg) + nonce_prefix + bytes([reserved])


def seal(plaintext, *, kek, kek_id, kek_version, data_key, nonce_prefix, wrap_nonce, seg,
         reserved=0, lastflags=None, force_empty_tail=False):
    pre = prefix(seg, nonce_prefix, reserved)
    aad = pre + kek_id + struct.pack(">I", kek_version)
    wrapped = AESGCM(kek).encrypt(wrap_nonce, data_key, aad)
    authenticated = aad + wrap_nonce + wrapped
    mac = hmac.new(hkdf(data_key, b"MVLT v1 header"), authenticated, hashlib.sha256).digest()
    payload_key = AESGCM(hkdf(data_key, b"MVLT v1 payload"))
    chunks = [plaintext[i:i + seg] for i in range(0, len(plaintext), seg)] or [b""]
    if force_empty_tail:
        chunks.append(b"")
    body = b""
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        if lastflags is not None:
            last = lastflags[i]
        nonce = nonce_prefix + struct.pack(">I", i) + bytes([1 if last else 0])
        body += payload_key.encrypt(nonce, chunk, None)
    return authenticated + mac + body


KEK = det("kek", 32)
KEK_ID = det("kek-id", 16)
KEK_VERSION = 3
SEG = 16


def params(name):
    return dict(kek=KEK, kek_id=KEK_ID, kek_version=KEK_VERSION, data_key=det(name + "/dk", 32),
                nonce_prefix=det(name + "/np", 7), wrap_nonce=det(name + "/wn", 12), seg=SEG)


vectors = []


def add(name, sealed, expect, plaintext=None, p=None, comment=None):
    vectors.append((name, sealed, expect, plaintext, p, comment))


def flip(b, i, bit=0):
    b = bytearray(b)
    b[i] ^= 1 << bit
    return bytes(b)


for n in (0, 1, 15, 16, 17, 32, 100):
    name = f"success-{n}-bytes"
    pt = det(name + "/pt", n)
    p = params(name)
    add(name, seal(pt, **p), "success", pt, p)

base_pt = det("base/pt", 50)  # 4 segments: 16, 16, 16, 2
base_p = params("base")
base = seal(base_pt, **base_p)
full = SEG + TAG

add("header-magic", flip(base, 0), "header failure", comment="magic changed")
add("header-version", base[:4] + b"\x02" + base[5:], "header failure", comment="version 2")
add("header-algorithm", flip(base, 5, 1), "header failure", comment="algorithm byte changed")
add("header-segment-size", flip(base, 10, 0), "header failure", comment="segment size 16 -> 272")
add("header-nonce-prefix", flip(base, 12), "header failure", comment="nonce prefix edited")
add("header-kek-id", flip(base, 20), "header failure", comment="KEK id edited")
add("header-kek-version", flip(base, 39), "header failure", comment="KEK version edited")
add("header-wrap-nonce", flip(base, 40), "header failure", comment="wrap nonce edited")
add("header-wrapped-key", flip(base, 60), "header failure", comment="wrapped data key edited")
add("header-mac", flip(base, 120), "header failure", comment="header MAC edited")
add("header-truncated-3", base[:3], "header failure", comment="cut inside the magic")
add("header-truncated-131", base[:131], "header failure", comment="cut one byte short of the header")
add("header-only", base[:HEADER], "payload failure", comment="no payload at all")
wrong_kek = dict(base_p, kek=det("other-kek", 32))
add("header-wrong-kek", seal(base_pt, **wrong_kek), "header failure", comment="wrapped under a different KEK with the same id and version")
p = params("reserved")
add("header-reserved-authentic", seal(base_pt, reserved=1, **p), "header failure", comment="reserved byte set, header otherwise authentic")
p = dict(params("odd-size"), seg=24)
add("header-segment-size-not-power-of-two", seal(base_pt, **p), "header failure", comment="segment size 24, header otherwise authentic")

add("payload-truncated-segment-boundary", base[:HEADER + 3 * full], "payload failure", comment="last segment dropped")
add("payload-truncated-mid-segment", base[:HEADER + full + 5], "payload failure", comment="cut inside segment 1")
add("payload-truncated-one-byte", base[:-1], "payload failure", comment="last byte dropped")
add("payload-appended-byte", base + b"\x00", "payload failure", comment="one byte appended")
add("payload-appended-segment", base + base[HEADER:HEADER + full], "payload failure", comment="segment 0 appended again")
seg0 = base[HEADER:HEADER + full]
seg1 = base[HEADER + full:HEADER + 2 * full]
add("payload-reordered", base[:HEADER] + seg1 + seg0 + base[HEADER + 2 * full:], "payload failure", comment="segments 0 and 1 swapped")
other = seal(base_pt, **dict(base_p, data_key=det("other/dk", 32)))
add("payload-foreign-segment", base[:HEADER + full] + other[HEADER + full:HEADER + 2 * full] + base[HEADER + 2 * full:], "payload failure", comment="segment 1 taken from a file with another data key")
add("payload-ciphertext-bit", flip(base, HEADER + 3), "payload failure", comment="bit flipped in segment 0 ciphertext")
add("payload-tag-bit", flip(base, HEADER + full - 1), "payload failure", comment="bit flipped in segment 0 tag")
add("payload-last-segment-bit", flip(base, len(base) - 17), "payload failure", comment="bit flipped in the final segment")
p = params("early-last")
add("payload-early-last-flag", seal(det("early-last/pt", 40), lastflags=[True, False, True], **p), "payload failure", comment="segment 0 sealed as last")
p = params("no-last")
add("payload-missing-last-flag", seal(det("no-last/pt", 40), lastflags=[False, False, False], **p), "payload failure", comment="final segment not sealed as last")
p = params("empty-tail")
add("payload-empty-final-segment", seal(det("empty-tail/pt", 32), force_empty_tail=True, **p), "payload failure", comment="an empty final segment after full ones")

print("# MVLT v1 test vectors. Generated by scripts/make-format-vectors.py from docs/format.md")
print("# with pyca/cryptography (independent of the Swift implementation). Do not edit by hand.")
print("# Fields are hex. kek/kek_id/kek_version open every vector; success vectors also give the")
print("# randomness (data_key, nonce_prefix, wrap_nonce) so a writer must reproduce `sealed` exactly.")
print(f"# kek: {KEK.hex()}")
print(f"# kek_id: {KEK_ID.hex()}")
print(f"# kek_version: {KEK_VERSION}")
for name, sealed, expect, pt, p, comment in vectors:
    print()
    print(f"name: {name}")
    if comment:
        print(f"comment: {comment}")
    print(f"kek: {KEK.hex()}")
    print(f"kek_id: {KEK_ID.hex()}")
    print(f"kek_version: {KEK_VERSION}")
    if p is not None:
        print(f"segment_size: {p['seg']}")
        print(f"data_key: {p['data_key'].hex()}")
        print(f"nonce_prefix: {p['nonce_prefix'].hex()}")
        print(f"wrap_nonce: {p['wrap_nonce'].hex()}")
    if pt is not None:
        print(f"plaintext: {pt.hex()}")
    print(f"sealed: {sealed.hex()}")
    print(f"expect: {expect}")
