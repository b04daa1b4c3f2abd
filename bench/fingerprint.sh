#!/usr/bin/env bash
# Fingerprinted downloads against plain ones, from the same server, of the same 1 GiB F16
# safetensors file (64 matrices of 4096 × 2048, Gaussian weights), over TLS with curl:
#  - plain:  ?unmarked=true, the stored original decrypted on the fly (best of 3);
#  - marked, first copy for a recipient: marked on the fly and hashed (SHA-256 of the copy is
#    recorded for the client to check), one new API token per run (best of 3);
#  - marked, repeated: the same recipient again, digest already known (best of 3).
# The copies are then checked: one recipient's downloads are byte-identical, another's differ, and
# `mvault trace` names the token a copy went to. curl writes to /dev/null while timed.
# Usage: bench/fingerprint.sh
cd "$(dirname "$0")"
source ./watermark-lib.sh numpy safetensors
source ./server-lib.sh

.cache/venv/bin/python - "$W/model.safetensors" <<'PY'
import sys
import numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(1)
save_file({f"model.layers.{i}.mlp.up_proj.weight": (rng.standard_normal((4096, 2048), dtype=np.float32) * 0.02).astype(np.float16)
           for i in range(64)}, sys.argv[1])
PY
"$MV" push "$W/model.safetensors" --model acme/f16 > /dev/null
URL="$BASE/v1/models/acme/f16/versions/1/files/model.safetensors"

speed() { curl -s --cacert "$CA" -o "$2" -w '%{speed_download}' -H "Authorization: Bearer $1" "$3"; }
mbps() { echo "scale=1; $1 / 1000000" | bc -l; }
max() { if (( $(echo "$1 > $2" | bc -l) )); then echo "$1"; else echo "$2"; fi; }

PLAIN=0; FIRST=0; AGAIN=0
TOKENS=()
for i in 1 2 3; do
  PLAIN=$(max "$PLAIN" "$(speed "$TOKEN" /dev/null "$URL?unmarked=true")")
  # A new recipient each time: its first copy is hashed as it is sent.
  TOKENS+=("$("$MV" token create "bench-$i" --scope "acme/*:pull,read" --expires 1h | awk '/^secret/ {print $NF}')")
  FIRST=$(max "$FIRST" "$(speed "${TOKENS[-1]}" /dev/null "$URL")")
done
for i in 1 2 3; do AGAIN=$(max "$AGAIN" "$(speed "${TOKENS[2]}" /dev/null "$URL")"); done
# Checks, after the timed runs (writing a file costs the client CPU the server would miss):
# a recipient's copies are identical, two recipients' differ, and each differs from the original.
speed "${TOKENS[2]}" "$W/third.safetensors" "$URL" > /dev/null
speed "${TOKENS[2]}" "$W/third-again.safetensors" "$URL" > /dev/null
speed "${TOKENS[1]}" "$W/second.safetensors" "$URL" > /dev/null
cmp "$W/third.safetensors" "$W/third-again.safetensors"
! cmp -s "$W/third.safetensors" "$W/second.safetensors"
! cmp -s "$W/second.safetensors" "$W/model.safetensors"
RSS=$(peak_rss_mib "$SERVER_PID")
SERVER_LOG="$W/server.log"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
for share in $(grep -o 'mvs1-[^ ]*' "$W/init.txt" | head -3); do
  echo "$share" | MVAULT_VAULT="$W/vault" "$MV" unseal > /dev/null
done
TRACE=$("$MV" trace "$W/second.safetensors" --vault "$W/vault" --model acme/f16 | grep '^MATCH' || true)

echo
echo "fingerprinted download of a 1 GiB F16 safetensors file over TLS, release build, $(nproc) cores, $(date -u +%F)"
printf "%-60s %10s\n" "curl, best of 3" "MB/s"
printf "%-60s %10s\n" "plain (?unmarked=true, decrypted on the fly)" "$(mbps "$PLAIN")"
printf "%-60s %10s\n" "fingerprinted, first copy for a recipient (marked + hashed)" "$(mbps "$FIRST")"
printf "%-60s %10s\n" "fingerprinted, same recipient again (marked)" "$(mbps "$AGAIN")"
echo
echo "first copy / plain = $(ratio "$FIRST" "$PLAIN")   repeated / plain = $(ratio "$AGAIN" "$PLAIN")   (target >= 0.75)"
echo "server peak RSS: ${RSS} MiB"
echo "trace of the second recipient's copy: ${TRACE:-NO MATCH}"
