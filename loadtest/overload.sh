#!/usr/bin/env bash
# Overload and idle-socket benchmarks (issue 12 items 4 and 5), release build.
#
#   loadtest/overload.sh [db] [idle]          (default: db idle)
#
#   db    POST food (a write) on closed-loop keep-alive connections at 1×, 3×,
#         10×, 30× the database capacity (multiples of the pool: 16 → 16, 48,
#         160, 480 connections) and at 5,000 connections: goodput (2xx/s),
#         shed 503s/s, p50/p99 of each, server RSS during and 5 s after, and
#         the bytes the server logged. Run twice: with the defaults
#         (queue_timeout_ms 50) and with queue_timeout_ms = connection_timeout
#         (2,000: requests wait for a connection as before the change).
#   idle  20,000 idle sockets (two generator processes of 10,000, each
#         reopening what the server closes) against the default cap while
#         health probes (new connection, API port and api.probe_port) and
#         GET xp (on a connection opened before the flood) run every 100 ms:
#         how many are answered, how fast; the open-connections gauge.
#
# Knobs: OVL_SECS (15), OVL_LEVELS ("16 48 160 480 5000"), OVL_PORT (18310),
# OVL_DB_ARGS (e.g. --honour-retry-after: clients wait the 503's Retry-After),
# OVL_DB_BASELINE (1; 0 skips the queue_timeout_ms=2000 rows),
# OVL_AFTER ("30 60": seconds after the last level to read RSS at; "" for none),
# OVL_SOCKETS (20000), OVL_USERS (1000). Use HA_PG_PORT/HA_REDIS_PORT for the
# stack as with ./dev. Output: stdout and loadtest/results/overload-<time>.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${OVL_SECS:-15}; levels=${OVL_LEVELS:-16 48 160 480 5000}
port=${OVL_PORT:-18310}; sockets=${OVL_SOCKETS:-20000}; users=${OVL_USERS:-1000}
key=bench-key
export API_KEY=$key

mkdir -p loadtest/results
stamp=$(date +%Y%m%d-%H%M%S)
log=loadtest/results/overload-$stamp.log
exec > >(tee "$log") 2>&1

./dev stack >/dev/null
eval "$(./dev env)"
db_url=${DATABASE_URL%/*}/ha_overload
cargo build --release --quiet -p health-agent --bin health-agent -p loadtest --bin overload --bin chatload
bin=${CARGO_TARGET_DIR:-target}/release
url=http://127.0.0.1:$port
# The generator's 5,000 (and 2 × 10,000) sockets; the server raises its own.
ulimit -n "$(ulimit -Hn)"

pid=""
stop_server() {
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  pid=""
}
trap stop_server EXIT

server_log=""
start_server() { # extra env...
  ./dev psql -q -c 'DROP DATABASE IF EXISTS ha_overload' -c 'CREATE DATABASE ha_overload' >/dev/null
  DATABASE_URL=$db_url $bin/health-agent migrate up >/dev/null
  server_log=loadtest/results/overload-$stamp-server-$RANDOM.log
  env DATABASE_URL="$db_url" API_KEYS=$key API_PORT="$port" LOG_LEVEL=warn \
    HEALTH_AGENT__CACHE__NAMESPACE="ovl$RANDOM" "$@" $bin/health-agent serve >"$server_log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do curl -fs -o /dev/null "$url/api/health" && break; sleep 0.1; done
  # Shed 503s are possible on a busy box; existing users answer 409.
  for _ in 1 2 3 4 5; do
    $bin/chatload seed --url "$url" --users "$users" >/dev/null 2>&1 && break
  done
}

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }
log_bytes() { stat -c %s "$server_log"; }

db_runs() { # label, extra env...
  local label=$1; shift
  start_server "$@"
  echo "--- $label"
  $bin/overload --url "$url" db --conns 16 --secs 3 >/dev/null # warm-up
  local c out during before_log
  for c in $levels; do
    before_log=$(log_bytes)
    $bin/overload --url "$url" db --conns "$c" --secs "$secs" ${OVL_DB_ARGS:-} >/tmp/ovl-$$.out &
    sleep "$((secs / 2))"; during=$(rss_mb)
    wait $!
    out=$(grep RESULT /tmp/ovl-$$.out | sed 's/RESULT //')
    sleep 5
    printf '%-5s %s rss_during_mb=%s rss_after_mb=%s log_bytes=%s\n' \
      "$c" "$out" "$during" "$(rss_mb)" "$(( $(log_bytes) - before_log ))"
  done
  # Memory given back once the load is over (issue 16: <= 60 MB within 60 s).
  local waited=5 t
  for t in ${OVL_AFTER-30 60}; do
    sleep $((t - waited)); waited=$t
    echo "rss ${t}s after the last level: $(rss_mb) MB"
  done
  rm -f /tmp/ovl-$$.out
  stop_server
}

# After a 5 s delay (the flood ramps up), GET /api/health on a new
# connection every 100 ms for $2 s, each with a 10 s timeout: "code seconds".
curl_probes() {
  sleep 5
  local end=$((SECONDS + $2))
  while ((SECONDS < end)); do
    curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' "$1/api/health" &
    sleep 0.1
  done
  wait
}

summarize_probes() { # label, file
  sort -k2 -n "$2" | awk -v label="$1" '
    { n++ } $1 == 200 { t[++ok] = $2 * 1000 }
    END {
      p50 = int(ok * 0.5); if (p50 < 1) p50 = 1
      p99 = int(ok * 0.99); if (p99 < 1) p99 = 1
      printf "RESULT %s: %d/%d answered 200 (%.1f %%), p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
        label, ok, n, 100 * ok / (n ? n : 1), t[p50], t[p99], t[ok]
    }'
}

idle_run() {
  local probe_port=$((port + 1))
  start_server HEALTH_AGENT__API__PROBE_PORT=$probe_port
  echo "--- $sockets idle sockets (server: api.max_connections default, fd limit $(ulimit -Hn), probe port $probe_port)"
  local half=$((sockets / 2))
  $bin/overload --url "$url" idle --sockets "$half" --secs 25 >/tmp/ovl-idle1-$$.out &
  local other=$!
  # Probes also from curl, a process of its own: the generator's runtime,
  # busy with 10,000 sockets, delays its own probes' timers.
  curl_probes "$url" 15 >/tmp/ovl-curl-api-$$.out &
  local c1=$!
  curl_probes "http://127.0.0.1:$probe_port" 15 >/tmp/ovl-curl-probe-$$.out &
  local c2=$!
  $bin/overload --url "$url" idle --sockets "$half" --secs 20 \
    --probe-url "http://127.0.0.1:$probe_port" | tee /tmp/ovl-idle2-$$.out
  wait "$c1" "$c2"
  summarize_probes "curl health, API port" /tmp/ovl-curl-api-$$.out
  summarize_probes "curl health, probe port" /tmp/ovl-curl-probe-$$.out
  rm -f /tmp/ovl-curl-api-$$.out /tmp/ovl-curl-probe-$$.out
  local m
  m=$(curl -s -H "X-API-Key: $key" "$url/api/v1/metrics" | tr -d '\n' | grep -o '"connections":{[^}]*}')
  wait "$other"; cat /tmp/ovl-idle1-$$.out
  echo "metrics after: $m rss_mb=$(rss_mb)"
  grep -c -i "too many open files" "$server_log" | sed 's/^/EMFILE lines in the server log: /' || true
  rm -f /tmp/ovl-idle1-$$.out /tmp/ovl-idle2-$$.out
  stop_server
}

echo "machine: $(nproc) vCPU, $(free -g | awk '/Mem/ {print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r); levels: $levels connections, ${secs}s each"
for what in "${@:-db idle}"; do
  for w in $what; do
    case $w in
      db)
        db_runs "queue_timeout_ms=50 (default)"
        [[ ${OVL_DB_BASELINE:-1} == 0 ]] ||
          db_runs "queue_timeout_ms=2000 (waits for a connection, as before)" HEALTH_AGENT__DATABASE__QUEUE_TIMEOUT_MS=2000
        ;;
      idle) idle_run ;;
      *) echo "unknown: $w (db idle)" >&2; exit 2 ;;
    esac
  done
done
