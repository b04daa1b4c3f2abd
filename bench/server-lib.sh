# Shared by the server benchmarks: builds release binaries and starts a real, unsealed vault
# server with an administrator session. Source it; it sets BIN, MV, W, CA, BASE, TOKEN, SERVER_PID.
set -euo pipefail

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

source ./build-lib.sh
MV="$(release_build .build mvault)"
release_build .build hello-tls > /dev/null
BIN="$(dirname "$MV")"

W="$(mktemp -d /dev/shm/mvault-server-bench.XXXX)"
cleanup() {
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  if [ -f "$W/nginx.pid" ]; then kill "$(cat "$W/nginx.pid")" 2>/dev/null || true; fi
  sleep 0.5
  rm -rf "$W"
}
trap cleanup EXIT

PASSWORD=violet-quarry-ledger-42
echo "$PASSWORD" > "$W/pw"
"$MV" init "$W/vault" --admin bench --admin-password-file "$W/pw" > "$W/init.txt"
CA="$W/vault/tls/ca.crt"
# Per-address limits off: the load generator is one address.
cat > "$W/server.json" <<JSON
{ "vault": "$W/vault",
  "limits": { "requestsPerSecondPerIP": 1000000000, "requestBurstPerIP": 1000000000 } }
JSON
PORT=$(free_port)
BASE="https://127.0.0.1:$PORT"
MVAULT_LISTEN="127.0.0.1:$PORT" "$MV" server --config "$W/server.json" > "$W/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -s -o /dev/null --cacert "$CA" "$BASE/v1/sys/health" && break
  sleep 0.1
done
for share in $(grep -o 'mvs1-[^ ]*' "$W/init.txt" | head -3); do
  curl -s -o /dev/null --cacert "$CA" -X POST "$BASE/v1/sys/unseal" -d "{\"share\": \"$share\"}"
done
export MVAULT_CONFIG_DIR="$W/config"
"$MV" login --addr "$BASE" --ca "$CA" --user bench < "$W/pw" > /dev/null
TOKEN=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$MVAULT_CONFIG_DIR/profile.json")

# Peak resident memory of a process so far, in MiB.
peak_rss_mib() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
ratio() { printf "%.2f" "$(echo "scale=4; $1 / $2" | bc -l)"; }
