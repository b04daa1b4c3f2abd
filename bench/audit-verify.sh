#!/usr/bin/env bash
# `mvault audit verify` on a log of N entries (default 1,000,000), written here by Python in the
# log's format (docs/audit.md) with a signed checkpoint every 1000 entries, against `sha256sum` of
# the same entries file (one streaming pass) as the reference. Target: ≥ 1 M entries/s.
# Usage: bench/audit-verify.sh [ENTRIES]
set -euo pipefail
cd "$(dirname "$0")"
N="${1:-1000000}"
source ./watermark-lib.sh cryptography
D="$(mktemp -d /dev/shm/mvault-audit-verify.XXXX)"
trap '[ -n "${KEEP:-}" ] || rm -rf "$D"' EXIT
.cache/venv/bin/python - "$D" "$N" <<'PY'
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d + "/checkpoints")
key = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
name = "mvault-audit"
kh = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
open(d + "/verifier.key", "w").write("%s+%s+%s\n" % (name, kh.hex(), base64.b64encode(b"\x01" + pub).decode()))
peaks = []  # (size, hash) of perfect subtrees
def root():
    h = peaks[-1][1]
    for _, p in reversed(peaks[:-1]):
        h = hashlib.sha256(b"\x01" + p + h).digest()
    return h
prev = b""
with open(d + "/entries.jsonl", "wb") as f:
    for seq in range(n):
        e = {"action": "GET /v1/models/{namespace}/{name}/versions/{version}/files/**", "actor": {"user": "user%d" % (seq % 50)},
             "decision": {"allowed": True, "rule": "role consumer allows pull on *"}, "phase": "request", "prev": prev.hex(),
             "requestID": "%016x" % seq, "seq": seq, "sourceIP": "10.0.%d.%d" % (seq % 256, seq % 199),
             "target": {"file": "model.safetensors", "model": "acme/m%d" % (seq % 20), "version": 1},
             "time": "2026-11-29T22:%02d:%02d.%03dZ" % (seq // 60000 % 60, seq // 1000 % 60, seq % 1000)}
        line = json.dumps(e, sort_keys=True, separators=(",", ":")).encode()
        f.write(line + b"\n")
        leaf = hashlib.sha256(b"\x00" + line).digest()
        prev = leaf
        node = (1, leaf)
        while peaks and peaks[-1][0] == node[0]:
            s, h = peaks.pop()
            node = (s * 2, hashlib.sha256(b"\x01" + h + node[1]).digest())
        peaks.append(node)
        if (seq + 1) % 1000 == 0 or seq + 1 == n:
            body = "mvault/bench\n%d\n%s\n" % (seq + 1, base64.b64encode(root()).decode())
            sig = key.sign(body.encode())
            open(d + "/checkpoints/%020d.txt" % (seq + 1), "w").write(body + "\n\u2014 %s %s\n" % (name, base64.b64encode(kh + sig).decode()))
PY
SIZE=$(stat -c %s "$D/entries.jsonl")
seconds() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
SHA=$(seconds sha256sum "$D/entries.jsonl")
VERIFY=$(seconds "$MV" audit verify --log "$D" --key "$D/verifier.key")
"$MV" audit verify --log "$D" --key "$D/verifier.key" | tail -1
echo
echo "audit verify on $N entries ($((SIZE >> 20)) MiB, $(ls "$D/checkpoints" | wc -l) checkpoints), release build, $(nproc) cores, $(date -u +%F)"
printf "%-44s %8s s\n" "sha256sum of the entries file (reference)" "$SHA" "mvault audit verify" "$VERIFY"
echo "entries/s = $(echo "$N / $VERIFY" | bc)   (target >= 1,000,000)"
