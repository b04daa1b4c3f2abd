#!/usr/bin/env bash
# Builds a fuzz target with libFuzzer + AddressSanitizer and runs it.
# Usage: fuzz/run.sh [SECONDS] [TARGET]   (defaults: 600, SealedFormatFuzz)
#   SealedFormatFuzz   the MVLT v1 header and segment parser, seeded from the committed test vectors
#   AccessParsersFuzz  model names, file paths, model patterns, networks and capability lists
#   RequestParsersFuzz Range and conditional headers, audit proof queries, and the token, grant,
#                      commit and login bodies, as a client sends them
#   AuditLogFuzz       the audit log's entries, checkpoints and verifier keys, seeded from its vectors
#   BackupFuzz         backup manifests (plain and signed) and S3 XML answers, seeded from the vector
#   ModelFormatsFuzz   the safetensors and GGUF parsers, seeded with files the official Python
#                      packages write (needs the .venv that scripts/test makes)
# Crashing inputs land in fuzz/artifacts/; the corpus grows in fuzz/corpus/ (both git-ignored).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN="${1:-600}"
TARGET="${2:-SealedFormatFuzz}"
swift build -c debug --scratch-path .build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
  --product "$TARGET" 2>&1 | grep -E "error|Build complete" || true
BIN="$(swift build -c debug --scratch-path .build --show-bin-path)/$TARGET"
mkdir -p "corpus/$TARGET" artifacts
case "$TARGET" in
SealedFormatFuzz)
  # Every vector's sealed bytes, once as a whole file (mode 0) and once as a payload (mode 1).
  python3 - <<'PY'
import pathlib
text = pathlib.Path("../Tests/SealedFormatTests/Vectors/mvlt-v1.txt").read_text()
for i, line in enumerate(l for l in text.splitlines() if l.startswith("sealed: ")):
    raw = bytes.fromhex(line.split(": ", 1)[1])
    pathlib.Path(f"corpus/SealedFormatFuzz/v{i:03d}-file").write_bytes(b"\x00" + raw)
    pathlib.Path(f"corpus/SealedFormatFuzz/v{i:03d}-payload").write_bytes(b"\x01" + raw[132:])
PY
  ;;
AccessParsersFuzz)
  python3 - <<'PY'
import pathlib
seeds = [b"acme/*\x00acme/llama-7b", b"acme/llama-*\x00acme/llama-2", b"*\x00x", b"10.0.0.0/8\x0010.1.2.3",
         b"2001:db8::/32\x002001:db8::1", b"::ffff:10.0.0.1\x0010.0.0.1", b"list,read,pull", b"all",
         b"acme/llama-7b@3", b"sub/dir/model.safetensors", b"../etc/passwd", b"a*b*c\x00aXbYc"]
for i, seed in enumerate(seeds):
    pathlib.Path(f"corpus/AccessParsersFuzz/seed{i:02d}").write_bytes(seed)
PY
  ;;
RequestParsersFuzz)
  python3 - <<'PY'
import pathlib, struct
size = struct.pack("<Q", 100)
seeds = [b"\x00" + size + b"bytes=5-18446744073709551615", b"\x00" + size + b"bytes=-10", b"\x00" + size + b"bytes=0-1,5-6",
         b"\x01" + b"0\x00-1\x00abcdefghij", b"\x02" + b"1\x00-5\x00abcdefghij", b"\x03" + b"\x0020\x00abc",
         b"\x04" + b'{"name": "ci", "scopes": [{"pattern": "acme/*", "capabilities": ["pull"]}], "requestsPerSecond": 1e-19}',
         b"\x05" + b'{"user": "bob", "pattern": "acme/*", "capabilities": ["pull"], "expiresIn": 60}',
         b"\x06" + b'{"note": "first"}', b"\x07" + b'{"username": "admin", "password": "x", "totp": "123456"}']
for i, seed in enumerate(seeds):
    pathlib.Path(f"corpus/RequestParsersFuzz/seed{i:02d}").write_bytes(seed)
PY
  ;;
ModelFormatsFuzz)
  # Seeds: a safetensors file and a GGUF file from the reference writers, each behind its selector byte.
  seeds="$(mktemp -d)"
  ../.venv/bin/python ../Tests/ModelFormatsTests/reference.py make-safetensors "$seeds/a.safetensors"
  ../.venv/bin/python ../Tests/ModelFormatsTests/reference.py make-gguf "$seeds/a.gguf"
  { printf '\x00'; cat "$seeds/a.safetensors"; } > "corpus/$TARGET/seed-safetensors"
  { printf '\x01'; cat "$seeds/a.gguf"; } > "corpus/$TARGET/seed-gguf"
  rm -rf "$seeds"
  MAX_LEN=16384
  ;;
AuditLogFuzz)
  # Seeds: the committed vectors' entries file (selector 0) and checkpoint (1), and the verifier key (2).
  python3 - <<'PY'
import pathlib
text = pathlib.Path("../Tests/AuditLogTests/Vectors/audit-v1.txt").read_text()
value = lambda name: [l.split(": ", 1)[1] if ": " in l else "" for l in text.splitlines() if l.startswith(name + ":")]
entries = "".join(e + "\n" for e in value("entry")).encode()
pathlib.Path("corpus/AuditLogFuzz/entries").write_bytes(b"\x00" + entries)
pathlib.Path("corpus/AuditLogFuzz/checkpoint").write_bytes(b"\x01" + ("\n".join(value("checkpoint")) + "\n").encode())
pathlib.Path("corpus/AuditLogFuzz/verifier").write_bytes(b"\x02" + value("verifier")[0].encode())
PY
  ;;
BackupFuzz)
  python3 - <<'PY'
import pathlib
text = pathlib.Path("../Tests/VaultServerTests/Vectors/backup-manifest.txt").read_text()
note = text.split("note:\n", 1)[1]
pathlib.Path("corpus/BackupFuzz/manifest").write_bytes(b"\x00" + note.split("\n\n")[0].encode() + b"\n")
pathlib.Path("corpus/BackupFuzz/note").write_bytes(b"\x01" + note.encode())
pathlib.Path("corpus/BackupFuzz/xml").write_bytes(
    b"\x02<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/b&amp;c</Key></Contents>"
    b"<NextContinuationToken>t</NextContinuationToken></ListBucketResult>")
PY
  ;;
*) echo "unknown target $TARGET" >&2; exit 1 ;;
esac
exec "$BIN" "corpus/$TARGET" -artifact_prefix=artifacts/ -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 \
  -max_len="${MAX_LEN:-4096}"
