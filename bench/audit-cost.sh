#!/usr/bin/env bash
# What the audit trail costs: authorized GET /v1/models/NAME with wrk (64 connections) against
# the same server built without its audit trail (-DMVAULT_AUDIT_DISABLED, a build for this
# benchmark only), with no sink, with a file sink, and with a syslog sink to a real rsyslogd.
# rsyslogd runs on the same cores; the syslog sink is also measured sending to a receiver that
# only reads its socket (drain), which tells the sink's own cost from the receiver's.
# Target (issue 5): audit costs at most 10 % of throughput.
# Usage: bench/audit-cost.sh [SECONDS] [ROUNDS]     defaults: 10 and 5
#        CONFIGS="none audit" bench/audit-cost.sh      only some of: none audit file syslog drain other
#        OTHER=BINARY CONFIGS="none audit other" …     A/B: another mvault build, audited, no sink
#        BENCH_DIR=DIR …     the vaults in DIR (default /dev/shm, where fsync is nearly free)
set -euo pipefail
cd "$(dirname "$0")"
SECS="${1:-10}"
ROUNDS="${2:-5}"
CONFIGS="${CONFIGS:-none audit file syslog drain}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v rsyslogd >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog >/dev/null; }
source ./build-lib.sh
MV="$(release_build .build mvault)"
MV_NOAUDIT="$(release_build .build-noaudit mvault -Xswiftc -DMVAULT_AUDIT_DISABLED)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

W="$(mktemp -d "${BENCH_DIR:-/dev/shm}/mvault-audit-cost.XXXX")"
cleanup() { for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
PASSWORD=violet-quarry-ledger-42
echo "$PASSWORD" > "$W/pw"
"$MV" init "$W/vault" --admin bench --admin-password-file "$W/pw" > "$W/init.txt"
"$MV" unseal --vault "$W/vault" <<< "$(grep -o 'mvs1-[^ ]*' "$W/init.txt" | head -1)" > /dev/null
"$MV" unseal --vault "$W/vault" <<< "$(grep -o 'mvs1-[^ ]*' "$W/init.txt" | sed -n 2p)" > /dev/null
"$MV" unseal --vault "$W/vault" <<< "$(grep -o 'mvs1-[^ ]*' "$W/init.txt" | sed -n 3p)" > /dev/null
"$MV" push ../samples/tiny-model --model acme/small --vault "$W/vault" > /dev/null
"$MV" seal --vault "$W/vault" > /dev/null
CA="$W/vault/tls/ca.crt"

# A real syslog receiver (TCP, octet-counted) writing what it gets to a file.
SYSLOG_PORT=$(free_port)
cat > "$W/rsyslog.conf" <<CONF
global(workDirectory="$W")
module(load="imtcp")
input(type="imtcp" port="$SYSLOG_PORT" address="127.0.0.1")
*.* action(type="omfile" file="$W/syslog.out")
CONF
rsyslogd -n -f "$W/rsyslog.conf" -i "$W/rsyslogd.pid" > /dev/null 2>&1 &
# A receiver that only reads: what arrives is appended to a file as it is, and its frames
# (octet counting: "LEN SP MSG") are counted once the rounds are over, so the receiver's own
# share of the cores stays small.
DRAIN_PORT=$(free_port)
python3 - "$DRAIN_PORT" "$W/drain" <<'PY' &
import itertools, os, socket, sys, threading
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
def drain(connection, n):
    out = os.open(f"{sys.argv[2]}.{n}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    buffer = memoryview(bytearray(1 << 20))
    while got := connection.recv_into(buffer):
        os.write(out, buffer[:got])
for n in itertools.count():
    threading.Thread(target=drain, args=(server.accept()[0], n), daemon=True).start()
PY
DRAIN_PID=$!
sleep 1

# start NAME BINARY SINKS_JSON: a server on its own copy of the vault (each has its own audit log),
# unsealed, with an administrator session; sets PORT_NAME and TOKEN_NAME.
declare -A PORT TOKEN PID
start() {
  local name="$1" bin="$2" sinks="$3" port; port=$(free_port)
  cp -a "$W/vault" "$W/vault-$name"
  cat > "$W/server-$name.json" <<JSON
{ "vault": "$W/vault-$name", "listen": { "host": "127.0.0.1", "port": $port },
  "limits": { "requestsPerSecondPerIP": 1000000000, "requestBurstPerIP": 1000000000 },
  "audit": { "sinks": $sinks } }
JSON
  "$bin" server --config "$W/server-$name.json" > "$W/server-$name.log" 2>&1 &
  PID[$name]=$!
  for _ in $(seq 100); do curl -s -o /dev/null --cacert "$CA" "https://127.0.0.1:$port/v1/sys/health" && break; sleep 0.1; done
  for share in $(grep -o 'mvs1-[^ ]*' "$W/init.txt" | head -3); do
    curl -s -o /dev/null --cacert "$CA" -X POST "https://127.0.0.1:$port/v1/sys/unseal" -d "{\"share\": \"$share\"}"
  done
  PORT[$name]=$port
  TOKEN[$name]=$(curl -s --cacert "$CA" -X POST "https://127.0.0.1:$port/v1/auth/login" \
    -d "{\"username\": \"bench\", \"password\": \"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
}
for name in $CONFIGS; do
  case $name in
    none) start none "$MV_NOAUDIT" '[]' ;;
    audit) start audit "$MV" '[]' ;;
    other) start other "$OTHER" '[]' ;;
    file) start file "$MV" "[{\"type\": \"file\", \"path\": \"$W/audit.jsonl\"}]" ;;
    syslog) start syslog "$MV" "[{\"type\": \"syslog\", \"address\": \"127.0.0.1:$SYSLOG_PORT\"}]" ;;
    drain) start drain "$MV" "[{\"type\": \"syslog\", \"address\": \"127.0.0.1:$DRAIN_PORT\"}]" ;;
  esac
done

# Rounds alternate between the servers (only one is loaded at a time), so the machine's drift
# over the run reaches all of them alike; each figure is the median of its rounds.
# Besides requests/s, the server's own CPU time per request (user + system, from /proc), which
# another tenant of the host disturbs less than it does throughput.
declare -A RATES CPU RECEIVER
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
for round in $(seq $ROUNDS); do
  for name in $CONFIGS; do
    # The receiver of this server's events, if any: it shares the cores too.
    receiver=
    case $name in syslog) receiver=$(cat "$W/rsyslogd.pid") ;; drain) receiver=$DRAIN_PID ;; esac
    before=$(cpu_ticks "${PID[$name]}")
    [ -n "$receiver" ] && receiver_before=$(cpu_ticks "$receiver")
    out=$(wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer ${TOKEN[$name]}" \
      "https://127.0.0.1:${PORT[$name]}/v1/models/acme/small")
    after=$(cpu_ticks "${PID[$name]}")
    [ -n "$receiver" ] && receiver_after=$(cpu_ticks "$receiver")
    if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw errors from $name: $out" >&2; exit 1; fi
    rate=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    RATES[$name]="${RATES[$name]:-} $rate"
    CPU[$name]="${CPU[$name]:-} $(echo "($after - $before) / $TICK * 1000000 / ($rate * $SECS)" | bc -l | xargs printf '%.1f')"
    if [ -n "$receiver" ]; then
      RECEIVER[$name]="${RECEIVER[$name]:-} $(echo "($receiver_after - $receiver_before) / $TICK * 1000000 / ($rate * $SECS)" | bc -l | xargs printf '%.1f')"
    fi
  done
done
median() { printf "%s\n" $1 | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p"; }
# The frames the drain received, over all its connections.
drain_frames() {
  python3 - "$W"/drain.* <<'PY'
import sys
frames = 0
for path in sys.argv[1:]:
    data, at = open(path, "rb").read(), 0
    while (space := data.find(b" ", at)) > 0 and len(data) >= space + 1 + int(data[at:space]):
        at, frames = space + 1 + int(data[at:space]), frames + 1
print(frames)
PY
}
for name in $CONFIGS; do echo "  $name runs:${RATES[$name]} req/s;${CPU[$name]} µs CPU/request" >&2; done
NONE=$(median "${RATES[none]}")
NONE_CPU=$(median "${CPU[none]}")
# Each round's cost against the same round's unaudited run (tens of seconds apart, so the host's
# drift cancels far better than between medians taken over the whole run); their median.
cost() {
  median "$(paste -d' ' <(printf "%s\n" ${RATES[none]}) <(printf "%s\n" ${RATES[$1]}) | awk '{print (1 - $2 / $1) * 100}')" \
    | xargs printf '%.1f %%'
}
echo "GET /v1/models/acme/small, wrk -c64, median of $ROUNDS alternating rounds x ${SECS}s"
echo "(audit costs: the median of each round's cost against that round's unaudited run):"
echo "  audit disabled (test build): $NONE req/s"
for name in $CONFIGS; do
  rate=$(median "${RATES[$name]}")
  case $name in
    audit) echo "  audited, no sink:            $rate req/s  (audit costs $(cost audit))" ;;
    other) echo "  $OTHER, no sink: $rate req/s  (audit costs $(cost other))" ;;
    file) echo "  audited, file sink:          $rate req/s  (audit costs $(cost file))" ;;
    syslog) echo "  audited, syslog sink:        $rate req/s  (audit costs $(cost syslog); $(wc -l < "$W/syslog.out") lines at rsyslog)"
      echo "    rsyslogd, the receiver, shares these cores: $(median "${RECEIVER[syslog]}") µs of its CPU per event" ;;
    drain) echo "  audited, syslog sink, to a receiver that only reads: $rate req/s  (audit costs $(cost drain); $(drain_frames) frames there)"
      echo "    the drain (Python) shares these cores too: $(median "${RECEIVER[drain]}") µs of its CPU per event" ;;
  esac
done
echo "server CPU per request (median): audit disabled $NONE_CPU µs"
for name in $CONFIGS; do
  [ "$name" = none ] && continue
  c=$(median "${CPU[$name]}")
  echo "  $name: $c µs  (+$(echo "$c - $NONE_CPU" | bc -l | xargs printf '%.1f') µs, $(echo "($c / $NONE_CPU - 1) * 100" | bc -l | xargs printf '%.1f') %)"
done
