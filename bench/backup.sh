#!/usr/bin/env bash
# Backups against restic (Debian), in the same run on the same vault directory:
#  1. a first, full `mvault backup create` of a vault holding SIZE_GIB of models, against
#     `restic backup` of the vault directory into a new repository (both to the same disk, with
#     the vault's files in the page cache for both);
#  2. the vault grown to INCR_GIB, backed up once, then an incremental backup of it unchanged
#     (target: under 5 s), against restic's incremental backup of the same.
# Usage: bench/backup.sh [SIZE_GIB] [INCR_GIB]     defaults: 3 and 10
set -euo pipefail
cd "$(dirname "$0")"
SIZE_GIB="${1:-3}"
INCR_GIB="${2:-10}"
command -v restic >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic >/dev/null; }
source ./build-lib.sh
MV="$(release_build .build mvault)"

W="$(mktemp -d /tmp/mvault-backup-bench.XXXX)"
cleanup() { "$MV" seal --vault "$W/vault" >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
echo "correct-horse-battery-staple-9" > "$W/pass"
"$MV" init "$W/vault" --passphrase-file "$W/pass" > /dev/null
"$MV" unseal --vault "$W/vault" < "$W/pass" > /dev/null

# Models of 1 GiB each (random: neither tool can compress or deduplicate them).
add_models() { # add_models FROM TO
  for i in $(seq "$1" "$2"); do
    head -c $((1 << 30)) /dev/urandom > "$W/model-$i.bin"
    "$MV" push "$W/model-$i.bin" --model "acme/m$i" --vault "$W/vault" > /dev/null
    rm "$W/model-$i.bin"
  done
}
seconds() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
warm() { cat "$W"/vault/blobs/*/* > /dev/null; }

add_models 1 "$SIZE_GIB"
export RESTIC_PASSWORD=bench-password RESTIC_REPOSITORY="$W/restic"
restic init > /dev/null
warm
OURS=$(seconds "$MV" backup create --vault "$W/vault" --to "$W/mvault-backup")
warm
RESTIC=$(seconds restic backup --quiet "$W/vault")
printf 'full backup of %d GiB: mvault %.2f s (%.0f MB/s), restic %.2f s (%.0f MB/s) -> restic/mvault time %.2f\n' \
  "$SIZE_GIB" "$OURS" "$(echo "$SIZE_GIB * 1073.741824 / $OURS" | bc -l)" "$RESTIC" \
  "$(echo "$SIZE_GIB * 1073.741824 / $RESTIC" | bc -l)" "$(echo "$RESTIC / $OURS" | bc -l)"

if [ "$INCR_GIB" -gt "$SIZE_GIB" ]; then add_models $((SIZE_GIB + 1)) "$INCR_GIB"; fi
"$MV" backup create --vault "$W/vault" --to "$W/mvault-backup" > /dev/null
restic backup --quiet "$W/vault" > /dev/null
INCR=$(seconds "$MV" backup create --vault "$W/vault" --to "$W/mvault-backup")
RESTIC_INCR=$(seconds restic backup --quiet "$W/vault")
printf 'incremental backup of an unchanged %d GiB vault: mvault %.2f s (target < 5 s), restic %.2f s\n' \
  "$INCR_GIB" "$INCR" "$RESTIC_INCR"
