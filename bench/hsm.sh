#!/usr/bin/env bash
# Sealed-file throughput of an HSM-sealed vault (SoftHSM2) against a Shamir-sealed one, in the
# same run on the same file: push (seal) and pull (open) of SIZE_MIB, best of 3 each. The HSM is
# used once per unseal; data keys are wrapped by KEKs in memory, so the two should match.
# Usage: bench/hsm.sh [SIZE_MIB]     default: 1024
set -euo pipefail
cd "$(dirname "$0")"
SIZE_MIB="${1:-1024}"
[ -e /usr/lib/softhsm/libsofthsm2.so ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null; }
source ./build-lib.sh
MV="$(release_build .build mvault)"
W="$(mktemp -d /dev/shm/mvault-hsm-bench.XXXX)"
cleanup() { for v in shamir hsm; do "$MV" seal --vault "$W/$v" >/dev/null 2>&1 || true; done; rm -rf "$W"; }
trap cleanup EXIT
export SOFTHSM2_CONF="$W/softhsm2.conf" MVAULT_PKCS11_PIN=bench-pin-1234
mkdir -p "$W/tokens"
echo "directories.tokendir = $W/tokens" > "$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label bench --pin "$MVAULT_PKCS11_PIN" --so-pin 87654321 > /dev/null
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$W/model.bin"

shares=$("$MV" init "$W/shamir" --shares 1 --threshold 1 | grep -o 'mvs1-[^ ]*')
echo "$shares" | "$MV" unseal --vault "$W/shamir" > /dev/null
"$MV" init "$W/hsm" --seal pkcs11 --module /usr/lib/softhsm/libsofthsm2.so --token bench --shares 1 --threshold 1 > /dev/null
"$MV" unseal --vault "$W/hsm" > /dev/null

# Rounds alternate between the vaults, so neither gains from going second; best of 3 each.
seconds() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
lower() { if [ -z "$1" ] || (( $(echo "$2 < $1" | bc -l) )); then echo "$2"; else echo "$1"; fi; }
push=("" ""); pull=("" "")
for round in 1 2 3; do
  for i in 0 1; do
    v=$([ $i = 1 ] && echo hsm || echo shamir)
    push[$i]=$(lower "${push[$i]}" "$(seconds "$MV" push "$W/model.bin" --model "acme/m$round" --vault "$W/$v")")
    rm -rf "$W/out-$v"
    pull[$i]=$(lower "${pull[$i]}" "$(seconds "$MV" pull "acme/m$round" --vault "$W/$v" -o "$W/out-$v")")
  done
done
mbps() { echo "$SIZE_MIB * 1.048576 / $1" | bc -l; }
printf 'push %d MiB: shamir %.0f MB/s, hsm %.0f MB/s -> hsm/shamir %.2f\n' "$SIZE_MIB" "$(mbps "${push[0]}")" \
  "$(mbps "${push[1]}")" "$(echo "${push[0]} / ${push[1]}" | bc -l)"
printf 'pull %d MiB: shamir %.0f MB/s, hsm %.0f MB/s -> hsm/shamir %.2f\n' "$SIZE_MIB" "$(mbps "${pull[0]}")" \
  "$(mbps "${pull[1]}")" "$(echo "${pull[0]} / ${pull[1]}" | bc -l)"
