"""Writes audit-v1.txt: audit log test vectors from an implementation independent of ModelVault's
Swift code (Python's json, hashlib and the `cryptography` package). Run from this directory:
    python3 generate.py > audit-v1.txt
"""
import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

seed = bytes([7] * 32)
name = "mvault-audit"
origin = "mvault/vectors"
events = [
    {"action": "POST /v1/sys/unseal", "actor": {}, "phase": "response", "requestID": "0001", "result": {"status": 200},
     "sourceIP": "127.0.0.1", "time": "2026-11-29T22:00:00.000Z"},
    {"action": "POST /v1/auth/login", "actor": {"user": "mallory"}, "phase": "response", "requestID": "0002",
     "result": {"error": "invalid user name, password or TOTP code", "status": 401}, "sourceIP": "192.0.2.7",
     "time": "2026-11-29T22:00:01.250Z"},
    {"action": "GET /v1/models/{namespace}/{name}/versions/{version}/files/**", "actor": {"tokenID": "t1", "user": "alice"},
     "decision": {"allowed": True, "rule": "role consumer allows pull on *"}, "hashed": {"session": "hmac-sha256:00ff"},
     "phase": "request", "requestID": "0003", "sourceIP": "127.0.0.1",
     "target": {"file": "model.safetensors", "model": "acme/llama", "version": 2}, "time": "2026-11-29T22:00:02.500Z"},
    {"action": "GET /v1/models/{namespace}/{name}/versions/{version}/files/**", "actor": {"tokenID": "t1", "user": "alice"},
     "phase": "response", "requestID": "0003", "result": {"bytes": 1048576, "status": 200}, "sourceIP": "127.0.0.1",
     "target": {"file": "model.safetensors", "model": "acme/llama", "sha256": ["ab" * 32], "version": 2},
     "time": "2026-11-29T22:00:03.000Z"},
    {"action": "POST /v1/models/{namespace}/{name}/uploads", "actor": {"user": "bob"},
     "decision": {"allowed": False, "rule": "no role or grant allows push on acme/llama"}, "phase": "request",
     "requestID": "0004", "sourceIP": "127.0.0.1", "target": {"model": "acme/llama"}, "time": "2026-11-29T22:00:04.000Z"},
]


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node(root(leaves[:k]), root(leaves[k:]))


key = Ed25519PrivateKey.from_private_bytes(seed)
public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
key_hash = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]
print("# Audit log v1 test vectors (docs/audit.md), written by generate.py.")
print("seed: " + seed.hex())
print("verifier: %s+%s+%s" % (name, key_hash.hex(), base64.b64encode(b"\x01" + public).decode()))
leaves = []
prev = b""
for seq, event in enumerate(events):
    event = dict(event, seq=seq, prev=prev.hex())
    line = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    leaves.append(leaf(line))
    prev = leaves[-1]
    print("entry: " + line.decode())
    print("leaf: " + leaves[-1].hex())
    print("root: " + root(leaves).hex())
body = "%s\n%d\n%s\n" % (origin, len(leaves), base64.b64encode(root(leaves)).decode())
signature = key.sign(body.encode())
note = body + "\n\u2014 %s %s\n" % (name, base64.b64encode(key_hash + signature).decode())
for line in note.split("\n")[:-1]:
    print("checkpoint: " + line)
