#!/usr/bin/env bash
# Builds the MVLT v1 parser fuzz target with libFuzzer + AddressSanitizer and runs it.
# Usage: fuzz/run.sh [SECONDS]   (default 600). Seeds come from the committed test vectors.
# Crashing inputs land in fuzz/artifacts/; the corpus grows in fuzz/corpus/ (both git-ignored).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN="${1:-600}"
swift build -c debug --scratch-path .build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
  --product SealedFormatFuzz 2>&1 | grep -E "error|Build complete" || true
BIN="$(swift build -c debug --scratch-path .build --show-bin-path)/SealedFormatFuzz"
mkdir -p corpus/sealed artifacts
# Seed with every vector's sealed bytes, once as a whole file (mode 0) and once as a payload (mode 1).
python3 - <<'PY'
import pathlib
text = pathlib.Path("../Tests/SealedFormatTests/Vectors/mvlt-v1.txt").read_text()
for i, line in enumerate(l for l in text.splitlines() if l.startswith("sealed: ")):
    raw = bytes.fromhex(line.split(": ", 1)[1])
    pathlib.Path(f"corpus/sealed/v{i:03d}-file").write_bytes(b"\x00" + raw)
    pathlib.Path(f"corpus/sealed/v{i:03d}-payload").write_bytes(b"\x01" + raw[132:])
PY
exec "$BIN" corpus/sealed -artifact_prefix=artifacts/ -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -max_len=4096
