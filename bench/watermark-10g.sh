#!/usr/bin/env bash
# Bounded memory on a 10 GiB model: writes a 10 GiB F16 safetensors file (320 matrices of
# 4096 × 4096) to DIR (default: a temporary directory under /var/tmp), then reports time and peak
# RSS of `mvault watermark embed` and `detect` on it. Usage: bench/watermark-10g.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")"
source ./watermark-lib.sh numpy
D="$(mktemp -d "${1:-/var/tmp}/mvault-10g.XXXX")"
trap 'rm -rf "$D"' EXIT
.cache/venv/bin/python - "$D/model.safetensors" <<'PY'
import json, struct, sys
import numpy as np
rng = np.random.default_rng(7)
blocks = [(rng.standard_normal((4096, 4096), dtype=np.float32) * 0.02).astype(np.float16).tobytes() for _ in range(8)]
size = len(blocks[0])
header = {f"model.layers.{i}.mlp.up_proj.weight": {"dtype": "F16", "shape": [4096, 4096],
          "data_offsets": [i * size, (i + 1) * size]} for i in range(320)}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for i in range(320):
        f.write(blocks[i % 8])
PY
"$MV" watermark keygen "$D/k" > /dev/null
measure() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
read -r EMBED_S EMBED_KB < <(measure "$MV" watermark embed "$D/model.safetensors" --key "$D/k" -o "$D/marked.safetensors")
read -r DETECT_S DETECT_KB < <(measure "$MV" watermark detect "$D/marked.safetensors" --key "$D/k")
echo "10 GiB F16 safetensors ($(stat -c %s "$D/model.safetensors") bytes, 5,368,709,120 weights), release build, $(nproc) cores, $(date -u +%F)"
printf "%-28s %10s %16s\n" "" "seconds" "peak RSS (MiB)"
printf "%-28s %10s %16s\n" "mvault watermark embed" "$EMBED_S" "$((EMBED_KB / 1024))"
printf "%-28s %10s %16s\n" "mvault watermark detect" "$DETECT_S" "$((DETECT_KB / 1024))"
