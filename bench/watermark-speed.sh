#!/usr/bin/env bash
# Watermark speed on a 1 GiB F16 safetensors file (64 matrices of 4096 × 2048, Gaussian weights):
# `mvault watermark embed` and `detect` (release), against `sha256sum` of the same file as the
# reference for one streaming pass over the bytes. Usage: bench/watermark-speed.sh
set -euo pipefail
cd "$(dirname "$0")"
source ./watermark-lib.sh numpy safetensors
W="$(mktemp -d /dev/shm/mvault-watermark-speed.XXXX)"
trap 'rm -rf "$W"' EXIT
.cache/venv/bin/python - "$W/model.safetensors" <<'PY'
import sys
import numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(1)
save_file({f"model.layers.{i}.mlp.up_proj.weight": (rng.standard_normal((4096, 2048), dtype=np.float32) * 0.02).astype(np.float16)
           for i in range(64)}, sys.argv[1])
PY
"$MV" watermark keygen "$W/k" > /dev/null
seconds() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
SHA=$(seconds sha256sum "$W/model.safetensors")
EMBED=$(seconds "$MV" watermark embed "$W/model.safetensors" --key "$W/k" -o "$W/marked.safetensors")
DETECT=$( { /usr/bin/time -f "%e" "$MV" watermark detect "$W/marked.safetensors" --key "$W/k" > "$W/detect.txt"; } 2>&1 | tail -1)
grep -E "^z:" "$W/detect.txt"
echo
echo "1 GiB F16 safetensors (536,870,912 weights), release build, $(nproc) cores, $(date -u +%F)"
printf "%-40s %8s s\n" "sha256sum (one streaming pass)" "$SHA" "mvault watermark embed" "$EMBED" "mvault watermark detect" "$DETECT"
echo "detect / sha256sum = $(echo "scale=2; $DETECT / $SHA" | bc -l)   (target: detect <= 2 s)"
