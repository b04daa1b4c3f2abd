#!/usr/bin/env python3
"""Writes backup-manifest.txt: a backup manifest (docs/backup.md) signed as a C2SP note by an
Ed25519 key from a fixed seed, with the verifier key, made independently of the Swift code."""
import base64, hashlib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

seed = bytes(range(32))
key = Ed25519PrivateKey.from_private_bytes(seed)
pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
name = "mvault-backup"
key_hash = hashlib.sha256(name.encode() + b"\n" + b"\x01" + pub).digest()[:4]
encoded_key = base64.b64encode(b"\x01" + pub).decode()
verifier = f"{name}+{key_hash.hex()}+{encoded_key}"
text = (
    "mvault-backup v1\n"
    "snapshot 20261130T010203.042Z-9f3a\n"
    "created 2026-11-30T01:02:03.042Z\n"
    f"{hashlib.sha256(b'keyring').hexdigest()} 7 keyring.json\n"
    f"{hashlib.sha256(b'').hexdigest()} 0 tls/ca.crt\n"
)
signature = key.sign(text.encode())
note = text + "\n" + f"\u2014 {name} {base64.b64encode(key_hash + signature).decode()}\n"
with open("backup-manifest.txt", "w") as f:
    f.write("verifier: " + verifier + "\n")
    f.write("seed: " + seed.hex() + "\n")
    f.write("note:\n" + note)
