# Shared by the watermark benchmarks: builds the release `mvault` (sets MV) and a Python venv in
# bench/.cache/venv with the packages given. Source it from bench/: `source ./watermark-lib.sh PKG…`
swift build -c release --scratch-path .build --product mvault 2>&1 | grep -E "error|Build.*complete" || true
MV="$(swift build -c release --scratch-path .build --show-bin-path)/mvault"
mkdir -p .cache
[ -x .cache/venv/bin/python ] || python3 -m venv .cache/venv
.cache/venv/bin/pip install -q --disable-pip-version-check "$@"
