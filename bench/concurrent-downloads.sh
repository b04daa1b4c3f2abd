#!/usr/bin/env bash
# Memory under concurrent downloads: CLIENTS curl processes download the same SIZE_MIB model at
# once from a real server (release build); the server's resident memory is sampled every 0.2 s.
# Every download is checked against the stored SHA-256.
# Usage: bench/concurrent-downloads.sh [CLIENTS] [SIZE_MIB]     defaults: 20 and 2048
cd "$(dirname "$0")"
CLIENTS="${1:-20}"
SIZE_MIB="${2:-2048}"
source ./server-lib.sh

head -c "$((SIZE_MIB << 20))" /dev/urandom > "$W/model.bin"
SHA=$(sha256sum "$W/model.bin" | cut -d' ' -f1)
"$MV" push "$W/model.bin" --model acme/big > /dev/null
rm "$W/model.bin"
BEFORE=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")

URL="$BASE/v1/models/acme/big/versions/1/files/model.bin"
START=$(date +%s.%N)
PIDS=()
for i in $(seq "$CLIENTS"); do
  curl -s --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$URL" | sha256sum | cut -d' ' -f1 > "$W/sha-$i" &
  PIDS+=($!)
done
PEAK=0
while kill -0 "${PIDS[@]}" 2>/dev/null; do
  RSS=$(awk '/VmRSS/ { print $2 }' "/proc/$SERVER_PID/status")
  (( RSS > PEAK )) && PEAK=$RSS
  sleep 0.2
done
wait "${PIDS[@]}"
END=$(date +%s.%N)
for i in $(seq "$CLIENTS"); do
  [ "$(cat "$W/sha-$i")" = "$SHA" ] || { echo "download $i differs from the stored file" >&2; exit 1; }
done
TOTAL_GB=$(echo "scale=2; $CLIENTS * $SIZE_MIB * 1048576 / 1000000000" | bc -l)
SECS=$(echo "scale=1; $END - $START" | bc -l)
echo
echo "$CLIENTS concurrent downloads of a ${SIZE_MIB} MiB model over TLS, release build, $(nproc) cores, $(date -u +%F)"
echo "all $CLIENTS downloads match the stored SHA-256; ${TOTAL_GB} GB in ${SECS} s"
echo "server RSS before: ${BEFORE} MiB; peak during the downloads: $(echo "scale=1; $PEAK / 1024" | bc -l) MiB   (target < 256)"
