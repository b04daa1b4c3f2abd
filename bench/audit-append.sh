#!/usr/bin/env bash
# What appending one audit entry costs a request, on one thread, as a request writes its own entry
# when the log's device syncs fast: N entries like a model read's appended to a new log in
# /dev/shm, against the floor any such log pays, measured in the same run: the same entries'
# bytes, each hashed with SHA-256 and written with write(2) to a file opened with O_DSYNC.
# Also prints how much of an append building the event and encoding it take.
# Usage: bench/audit-append.sh [N]     default 200,000
set -euo pipefail
cd "$(dirname "$0")"
N="${1:-200000}"
source ./build-lib.sh
BIN="$(release_build .build audit-append)"
D="$(mktemp -d "${BENCH_DIR:-/dev/shm}/mvault-audit-append.XXXX")"
trap 'rm -rf "$D"' EXIT
"$BIN" "$N" "$D"
