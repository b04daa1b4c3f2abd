#!/usr/bin/env bash
# What the audit trail costs: authorized GET /v1/models/NAME with wrk (64 connections) against
# the same server built without its audit trail (-DMVAULT_AUDIT_DISABLED, a build for this
# benchmark only), with no sink, with a file sink, and with a syslog sink to a real rsyslogd.
# rsyslogd runs on the same cores, taking its share of them; it receives with imptcp, rsyslog's
# input for plain TCP at high rates (imtcp, its general one, costs it about twice the CPU per
# event: CONFIGS=… imtcp measures a sink to that too). The syslog sink is also measured sending to
# a receiver that only reads its socket (drain), which tells the sink's own cost from the receiver's.
# For each receiver the output gives its CPU per event and its share of the cores' time: the part
# of that configuration's cost that is the receiver's, which a receiver on another host would not take.
# Target (issue 5): audit costs at most 10 % of throughput.
# Usage: bench/audit-cost.sh [SECONDS] [ROUNDS]     defaults: 5 and 5
#        CONFIGS="none audit" bench/audit-cost.sh      only some of: none audit file syslog imtcp drain other
#        OTHER=BINARY CONFIGS="none audit other" …     A/B: another mvault build, audited, no sink
#        BENCH_DIR=DIR …     the vaults in DIR (default /dev/shm, where fsync is nearly free)
set -euo pipefail
cd "$(dirname "$0")"
SECS="${1:-5}"
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

# Real syslog receivers (TCP, octet-counted) writing what they get to a file: rsyslogd with
# imptcp (syslog) and with imtcp (imtcp).
declare -A SYSLOG_PORT
for input in imptcp imtcp; do
  SYSLOG_PORT[$input]=$(free_port)
  mkdir "$W/$input"
  cat > "$W/$input/rsyslog.conf" <<CONF
global(workDirectory="$W/$input")
module(load="$input")
input(type="$input" port="${SYSLOG_PORT[$input]}" address="127.0.0.1")
*.* action(type="omfile" file="$W/$input/syslog.out")
CONF
  rsyslogd -n -f "$W/$input/rsyslog.conf" -i "$W/$input/rsyslogd.pid" > /dev/null 2>&1 &
done
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
for name in none ${CONFIGS//none/}; do
  case $name in
    none) start none "$MV_NOAUDIT" '[]' ;;
    audit) start audit "$MV" '[]' ;;
    other) start other "$OTHER" '[]' ;;
    file) start file "$MV" "[{\"type\": \"file\", \"path\": \"$W/audit.jsonl\"}]" ;;
    syslog) start syslog "$MV" "[{\"type\": \"syslog\", \"address\": \"127.0.0.1:${SYSLOG_PORT[imptcp]}\"}]" ;;
    imtcp) start imtcp "$MV" "[{\"type\": \"syslog\", \"address\": \"127.0.0.1:${SYSLOG_PORT[imtcp]}\"}]" ;;
    drain) start drain "$MV" "[{\"type\": \"syslog\", \"address\": \"127.0.0.1:$DRAIN_PORT\"}]" ;;
  esac
done

# Rounds alternate between the servers (only one is loaded at a time). In each round the
# unaudited server runs first and again after every audited one, and an audited run's cost is
# taken against the mean of the unaudited runs just before and after it: seconds apart, so the
# host's drift (this shared VM's speed moves by tens of percent over a minute) cancels far better
# than between medians of whole runs. Each round starts one configuration later than the last.
# Besides requests/s, the server's own CPU time per request (user + system, from /proc), which
# another tenant of the host disturbs less than it does throughput.
declare -A RATES CPU RECEIVER SHARE COSTS ADDED
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
NCPU=$(nproc)
# measure NAME: one round of load on that server; sets RATE and CPU_PER_REQUEST.
measure() {
  local name="$1" receiver= before after receiver_before receiver_after out
  # The receiver of this server's events, if any: it shares the cores too.
  case $name in
    syslog) receiver=$(cat "$W/imptcp/rsyslogd.pid") ;;
    imtcp) receiver=$(cat "$W/imtcp/rsyslogd.pid") ;;
    drain) receiver=$DRAIN_PID ;;
  esac
  before=$(cpu_ticks "${PID[$name]}")
  [ -n "$receiver" ] && receiver_before=$(cpu_ticks "$receiver")
  out=$(wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer ${TOKEN[$name]}" \
    "https://127.0.0.1:${PORT[$name]}/v1/models/acme/small")
  after=$(cpu_ticks "${PID[$name]}")
  [ -n "$receiver" ] && receiver_after=$(cpu_ticks "$receiver")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw errors from $name: $out" >&2; exit 1; fi
  RATE=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  CPU_PER_REQUEST=$(echo "($after - $before) / $TICK * 1000000 / ($RATE * $SECS)" | bc -l | xargs printf '%.1f')
  RATES[$name]="${RATES[$name]:-} $RATE"
  CPU[$name]="${CPU[$name]:-} $CPU_PER_REQUEST"
  if [ -n "$receiver" ]; then
    RECEIVER[$name]="${RECEIVER[$name]:-} $(echo "($receiver_after - $receiver_before) / $TICK * 1000000 / ($RATE * $SECS)" | bc -l | xargs printf '%.1f')"
    # The share of the cores' time the receiver took: time the server and wrk did not have.
    SHARE[$name]="${SHARE[$name]:-} $(echo "($receiver_after - $receiver_before) / $TICK / ($SECS * $NCPU) * 100" | bc -l | xargs printf '%.1f')"
  fi
}
read -ra ORDER <<< "${CONFIGS//none/}"
for round in $(seq $ROUNDS); do
  measure none
  for k in "${!ORDER[@]}"; do
    name=${ORDER[$(( (k + round) % ${#ORDER[@]} ))]}
    read -r none_before none_cpu_before <<< "$RATE $CPU_PER_REQUEST"
    measure "$name"
    read -r rate cpu <<< "$RATE $CPU_PER_REQUEST"
    measure none
    COSTS[$name]="${COSTS[$name]:-} $(echo "(1 - 2 * $rate / ($none_before + $RATE)) * 100" | bc -l | xargs printf '%.1f')"
    ADDED[$name]="${ADDED[$name]:-} $(echo "$cpu - ($none_cpu_before + $CPU_PER_REQUEST) / 2" | bc -l | xargs printf '%.1f')"
  done
done
# The median of some numbers.
median() { printf "%s\n" $1 | sort -n | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
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
echo "  none runs:${RATES[none]} req/s;${CPU[none]} µs CPU/request" >&2
for name in "${ORDER[@]}"; do
  echo "  $name runs:${RATES[$name]} req/s;${CPU[$name]} µs CPU/request; costs:${COSTS[$name]} %; adds:${ADDED[$name]} µs" >&2
done
NONE=$(median "${RATES[none]}")
NONE_CPU=$(median "${CPU[none]}")
cost() { median "${COSTS[$1]}" | xargs printf '%.1f %%'; }
receiver() { echo "$(median "${RECEIVER[$1]}") µs of its CPU per event, $(median "${SHARE[$1]}") % of the $NCPU cores' time (the server and wrk did not have it)"; }
echo "GET /v1/models/acme/small, wrk -c64, median of $ROUNDS alternating rounds x ${SECS}s"
echo "(audit costs: the median over the rounds of each run's cost against the unaudited runs around it):"
echo "  audit disabled (test build): $NONE req/s  (its runs: $(printf "%s\n" ${RATES[none]} | sort -n | sed -n '1p;$p' | paste -sd' ' | awk '{printf "%d – %d, %.0f %% apart", $1, $2, ($2 / $1 - 1) * 100}'))"
for name in $CONFIGS; do
  rate=$(median "${RATES[$name]}")
  case $name in
    audit) echo "  audited, no sink:            $rate req/s  (audit costs $(cost audit))" ;;
    other) echo "  $OTHER, no sink: $rate req/s  (audit costs $(cost other))" ;;
    file) echo "  audited, file sink:          $rate req/s  (audit costs $(cost file))" ;;
    syslog) echo "  audited, syslog sink:        $rate req/s  (audit costs $(cost syslog); $(wc -l < "$W/imptcp/syslog.out") lines at rsyslog)"
      echo "    rsyslogd (imptcp), the receiver, shares these cores: $(receiver syslog)" ;;
    imtcp) echo "  audited, syslog sink to rsyslogd's imtcp: $rate req/s  (audit costs $(cost imtcp); $(wc -l < "$W/imtcp/syslog.out") lines at rsyslog)"
      echo "    rsyslogd (imtcp), the receiver, shares these cores: $(receiver imtcp)" ;;
    drain) echo "  audited, syslog sink, to a receiver that only reads: $rate req/s  (audit costs $(cost drain); $(drain_frames) frames there)"
      echo "    the drain (Python) shares these cores too: $(receiver drain)" ;;
  esac
done
echo "server CPU per request (median): audit disabled $NONE_CPU µs"
for name in "${ORDER[@]}"; do
  added=$(median "${ADDED[$name]}")
  echo "  $name: $(median "${CPU[$name]}") µs  (adds $added µs to the unaudited runs around it, $(echo "$added / $NONE_CPU * 100" | bc -l | xargs printf '%.1f') %)"
done
