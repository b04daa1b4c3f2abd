#!/usr/bin/env bash
# The HTTPS server against references measured in the same run, on the same machine:
#  1. authorized GET /v1/models/NAME with wrk at 64 connections, against the smallest
#     Hummingbird TLS server (bench/Sources/hello-tls) with the same certificate, run as
#     Hummingbird runs by default and, for comparison, on NIO's event loops as mvault runs;
#  2. a download of a SIZE_MIB model with curl, against nginx serving the same plaintext file
#     over TLS with the same certificate.
# The GET servers are measured in alternating rounds and each reported by its median round: on
# shared cores the machine's speed drifts by several per cent within a minute. mvault's cheapest
# route, GET /v1/sys/health (no credential, no audit entry), is measured too: what the server
# costs before authentication, policy, audit and the answer do.
# Usage: bench/server.sh [SIZE_MIB] [SECONDS] [ROUNDS]     defaults: 1024, 10 and 3
cd "$(dirname "$0")"
SIZE_MIB="${1:-1024}"
SECS="${2:-10}"
ROUNDS="${3:-3}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
source ./server-lib.sh

"$MV" push ../samples/tiny-model --model acme/small > /dev/null
mkdir -p "$W/www"
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$W/www/model.bin"
"$MV" push "$W/www/model.bin" --model acme/big > /dev/null

# wrk: requests/s and p99 latency; refuses to report a run with errors.
run_wrk() {
  local out; out=$(wrk -t2 -c64 -d"${SECS}s" --latency "$@")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw errors: $out" >&2; exit 1; fi
  echo "$(awk '/^Requests\/sec/ {print $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out")"
}
HELLO_PORT=$(free_port)
"$BIN/hello-tls" "$W/vault/tls/server.crt" "$W/vault/tls/server.key" "$HELLO_PORT" > /dev/null 2>&1 &
HELLO_NIO_PORT=$(free_port)
"$BIN/hello-tls" "$W/vault/tls/server.crt" "$W/vault/tls/server.key" "$HELLO_NIO_PORT" --nio-executor > /dev/null 2>&1 &
sleep 1
declare -A ROUND
for _ in $(seq "$ROUNDS"); do
  ROUND[hello]+="$(run_wrk "https://127.0.0.1:$HELLO_PORT/")"$'\n'
  ROUND[hello_nio]+="$(run_wrk "https://127.0.0.1:$HELLO_NIO_PORT/")"$'\n'
  ROUND[ours]+="$(run_wrk -H "Authorization: Bearer $TOKEN" "$BASE/v1/models/acme/small")"$'\n'
  ROUND[health]+="$(run_wrk "$BASE/v1/sys/health")"$'\n'
done
# The median round by requests/s: "RPS P99".
median_round() { sed '/^$/d' <<<"${ROUND[$1]}" | sort -n -k1 | awk '{r[NR] = $0} END {print r[int((NR + 1) / 2)]}'; }
all_rounds() { sed '/^$/d' <<<"${ROUND[$1]}" | awk '{printf "%s%s", sep, $1; sep = ", "}'; }
read -r HELLO_RPS HELLO_P99 < <(median_round hello)
read -r HELLO_NIO_RPS HELLO_NIO_P99 < <(median_round hello_nio)
read -r OURS_RPS OURS_P99 < <(median_round ours)
read -r HEALTH_RPS HEALTH_P99 < <(median_round health)
# A server against a reference: the median of their ratios round by round (runs seconds apart, so
# the host's drift cancels far better than between medians taken over the whole run).
round_ratio() {
  paste -d' ' <(sed '/^$/d' <<<"${ROUND[$1]}" | awk '{print $1}') <(sed '/^$/d' <<<"${ROUND[$2]}" | awk '{print $1}') \
    | awk '{print $1 / $2}' | sort -g | awk '{r[NR] = $0} END {printf "%.2f", r[int((NR + 1) / 2)]}'
}

# Downloads: best of 3 by curl's own average speed.
best_curl() {
  local best=0
  for _ in 1 2 3; do
    local s; s=$(curl -s -o /dev/null -w '%{speed_download}' "$@")
    if (( $(echo "$s > $best" | bc -l) )); then best=$s; fi
  done
  echo "scale=1; $best / 1000000" | bc -l
}
NGINX_PORT=$(free_port)
cat > "$W/nginx.conf" <<CONF
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events {}
http {
  access_log off;
  client_body_temp_path $W/nginx-body;
  proxy_temp_path $W/nginx-proxy;
  fastcgi_temp_path $W/nginx-fastcgi;
  uwsgi_temp_path $W/nginx-uwsgi;
  scgi_temp_path $W/nginx-scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $W/vault/tls/server.crt;
    ssl_certificate_key $W/vault/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $W/www;
  }
}
CONF
nginx -c "$W/nginx.conf" -p "$W" -e "$W/nginx-error.log"
sleep 0.5
NGINX_MBPS=$(best_curl --cacert "$CA" "https://127.0.0.1:$NGINX_PORT/model.bin")
OURS_MBPS=$(best_curl --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$BASE/v1/models/acme/big/versions/1/files/model.bin")
curl -s --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$BASE/v1/models/acme/big/versions/1/files/model.bin" | cmp - "$W/www/model.bin"
RSS=$(peak_rss_mib "$SERVER_PID")

echo
echo "mvault server over TLS, release build, $(nproc) cores, $(date -u +%F); load generator on the same machine"
printf "%-52s %14s %10s\n" "GET, wrk -t2 -c64 -d${SECS}s, median of $ROUNDS rounds" "requests/s" "p99"
printf "%-52s %14s %10s\n" "Hummingbird TLS hello-world (GET /)" "$HELLO_RPS" "$HELLO_P99"
printf "%-52s %14s %10s\n" "  the same on NIO's event loops, as mvault runs" "$HELLO_NIO_RPS" "$HELLO_NIO_P99"
printf "%-52s %14s %10s\n" "mvault GET /v1/models/acme/small (session token)" "$OURS_RPS" "$OURS_P99"
printf "%-52s %14s %10s\n" "  mvault GET /v1/sys/health (no credential)" "$HEALTH_RPS" "$HEALTH_P99"
printf "%-52s %14s\n" "download of ${SIZE_MIB} MiB, curl, best of 3" "MB/s"
printf "%-52s %14s\n" "nginx, plaintext file over TLS" "$NGINX_MBPS"
printf "%-52s %14s\n" "mvault, sealed file decrypted on the fly" "$OURS_MBPS"
echo
echo "requests/s, median of the rounds' ratios:"
echo "            mvault / hello-world = $(round_ratio ours hello)   (target >= 0.7)"
echo "            mvault / hello-world on NIO's event loops = $(round_ratio ours hello_nio)"
echo "            mvault health / hello-world = $(round_ratio health hello)   (the server's floor)"
echo "download:   mvault / nginx       = $(ratio "$OURS_MBPS" "$NGINX_MBPS")   (target >= 0.8)"
echo "server peak RSS over the run: ${RSS} MiB"
echo "rounds, requests/s: hello-world $(all_rounds hello); on event loops $(all_rounds hello_nio); mvault $(all_rounds ours); health $(all_rounds health)"
