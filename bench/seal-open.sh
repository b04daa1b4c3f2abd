#!/usr/bin/env bash
# Seal/open throughput of MVLT v1 against OpenSSL's single-core AES-256-GCM limit and against age,
# all measured in this run on the same files (in /dev/shm, so the disk is not what is measured).
# Usage: bench/seal-open.sh [SIZE_MIB] [RSS_SIZE_MIB]     defaults: 1024 and 4096
set -euo pipefail
cd "$(dirname "$0")"
SIZE_MIB="${1:-1024}"
RSS_MIB="${2:-4096}"
command -v age >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq age >/dev/null; }

source ./build-lib.sh
BENCH="$(release_build .build mvault-bench)"
W="$(mktemp -d /dev/shm/mvault-bench.XXXX)"
trap 'rm -rf "$W"' EXIT
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$W/in"
BYTES=$((SIZE_MIB << 20))

best() { # best (lowest) of 3 runs of "$@", printing seconds
  local b=999999
  for _ in 1 2 3; do
    local s e t
    s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l); if (( $(echo "$t < $b" | bc -l) )); then b=$t; fi
  done
  echo "$b"
}
gbps() { echo "scale=3; $BYTES / $1 / 1000000000" | bc -l; }
ours() { # best of 3 by the tool's own timing
  local b=0
  for _ in 1 2 3; do
    local g; g=$("$BENCH" "$@" | sed -E 's/.*gbps=([0-9.]+).*/\1/')
    if (( $(echo "$g > $b" | bc -l) )); then b=$g; fi
  done
  echo "$b"
}

OPENSSL=$(openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3 2>/dev/null | awk '/^AES-256-GCM/ {print $2}' | sed 's/k$//')
OPENSSL_GBPS=$(echo "scale=3; $OPENSSL * 1000 / 1000000000" | bc -l)

# One thread (the format's single-core rate), then every core (what `mvault push`/`pull` use).
N=$(nproc)
SEAL=$(ours seal "$W/in" "$W/sealed" 1)
OPEN=$(ours open "$W/sealed" "$W/out" 1)
cmp "$W/in" "$W/out"
SEAL_NULL=$(ours seal "$W/in" /dev/null 1)
OPEN_NULL=$(ours open "$W/sealed" /dev/null 1)
SEAL_N=$(ours seal "$W/in" "$W/sealed" "$N")
OPEN_N=$(ours open "$W/sealed" "$W/out" "$N")
cmp "$W/in" "$W/out"
SEAL_N_NULL=$(ours seal "$W/in" /dev/null "$N")
OPEN_N_NULL=$(ours open "$W/sealed" /dev/null "$N")

age-keygen -o "$W/key" 2>/dev/null
RECIPIENT=$(age-keygen -y "$W/key")
AGE_ENC_S=$(best age -r "$RECIPIENT" -o "$W/in.age" "$W/in")
AGE_DEC_S=$(best age -d -i "$W/key" -o "$W/out.age" "$W/in.age")
AGE_ENC=$(gbps "$AGE_ENC_S")
AGE_DEC=$(gbps "$AGE_DEC_S")
AGE_ENC_NULL=$(gbps "$(best age -r "$RECIPIENT" -o /dev/null "$W/in")")
AGE_DEC_NULL=$(gbps "$(best age -d -i "$W/key" -o /dev/null "$W/in.age")")

head -c "$((RSS_MIB << 20))" /dev/zero > "$W/big"
RSS=$("$BENCH" seal "$W/big" /dev/null 1 | sed -E 's/.*peak_rss_mib=([0-9.]+).*/\1/')
RSS_N=$("$BENCH" seal "$W/big" /dev/null "$N" | sed -E 's/.*peak_rss_mib=([0-9.]+).*/\1/')

ratio() { printf "%.2f" "$(echo "scale=4; $1 / $2" | bc -l)"; }
echo
echo "MVLT v1 seal/open, ${SIZE_MIB} MiB file in /dev/shm, 64 KiB segments, best of 3 ($N cores, $(date -u +%F))"
printf "%-34s %12s %12s\n" "measurement (GB/s)" "to a file" "to /dev/null"
printf "%-34s %12s %12s\n" "openssl speed aes-256-gcm 16 KiB" "-" "$OPENSSL_GBPS"
printf "%-34s %12s %12s\n" "mvault seal, 1 thread" "$SEAL" "$SEAL_NULL"
printf "%-34s %12s %12s\n" "mvault open, 1 thread" "$OPEN" "$OPEN_NULL"
printf "%-34s %12s %12s\n" "mvault seal, $N threads" "$SEAL_N" "$SEAL_N_NULL"
printf "%-34s %12s %12s\n" "mvault open, $N threads" "$OPEN_N" "$OPEN_N_NULL"
printf "%-34s %12s %12s\n" "age encrypt (X25519)" "$AGE_ENC" "$AGE_ENC_NULL"
printf "%-34s %12s %12s\n" "age decrypt" "$AGE_DEC" "$AGE_DEC_NULL"
echo
for t in 1 "$N"; do
  if [ "$t" = 1 ]; then s=$SEAL; sn=$SEAL_NULL; o=$OPEN; on=$OPEN_NULL; else s=$SEAL_N; sn=$SEAL_N_NULL; o=$OPEN_N; on=$OPEN_N_NULL; fi
  echo "$t thread(s):"
  echo "  seal / openssl = $(ratio "$s" "$OPENSSL_GBPS") to a file, $(ratio "$sn" "$OPENSSL_GBPS") to /dev/null   (target >= 0.8)"
  echo "  open / openssl = $(ratio "$o" "$OPENSSL_GBPS") to a file, $(ratio "$on" "$OPENSSL_GBPS") to /dev/null   (target >= 0.8)"
  echo "  seal / age     = $(ratio "$s" "$AGE_ENC") to a file, $(ratio "$sn" "$AGE_ENC_NULL") to /dev/null   (target >= 2)"
  echo "  open / age     = $(ratio "$o" "$AGE_DEC") to a file, $(ratio "$on" "$AGE_DEC_NULL") to /dev/null   (target >= 2)"
done
echo "peak RSS sealing a ${RSS_MIB} MiB file: ${RSS} MiB (1 thread), ${RSS_N} MiB ($N threads)   (target < 64)"
