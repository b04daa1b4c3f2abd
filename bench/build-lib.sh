# Shared by the benchmark scripts: `release_build SCRATCH PRODUCT [SWIFTC FLAGS…]` builds PRODUCT
# in release mode into SCRATCH and prints its path; a failed build stops the script.
# SwiftPM keeps its build plan while the package here is unchanged, so a source file added to the
# main package (a dependency here) went unseen: the build failed, or a stale binary was measured.
# The plan is made anew each time (a few seconds).
release_build() {
    local scratch="$1" product="$2" log
    shift 2
    # The package's C modules need these headers; a new machine has neither.
    if ! pkg-config --exists libsodium 2>/dev/null || ! pkg-config --exists p11-kit-1 2>/dev/null; then
        echo "installing libsodium-dev and libp11-kit-dev (headers the build needs)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsodium-dev libp11-kit-dev >/dev/null
    fi
    rm -f "$scratch/release.yaml" "$scratch/release/description.json"
    log="$(mktemp)"
    if ! swift build -c release --scratch-path "$scratch" --product "$product" "$@" > "$log" 2>&1; then
        grep -E "error" "$log" >&2 || tail -20 "$log" >&2
        rm -f "$log"
        echo "release build of $product failed" >&2
        exit 1
    fi
    rm -f "$log"
    echo "$(swift build -c release --scratch-path "$scratch" --show-bin-path)/$product"
}
