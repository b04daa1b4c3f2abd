# Shared by the watermark benchmarks: builds the release `mvault` (sets MV) and a Python venv in
# bench/.cache/venv with the packages given. Source it from bench/: `source ./watermark-lib.sh PKG…`
source ./build-lib.sh
MV="$(release_build .build mvault)"
mkdir -p .cache
[ -x .cache/venv/bin/python ] || python3 -m venv .cache/venv
.cache/venv/bin/pip install -q --disable-pip-version-check "$@"
