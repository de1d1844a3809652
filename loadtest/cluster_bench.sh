#!/usr/bin/env bash
# wrk through nginx against a running `./dev cluster` (release build):
#
#   eval "$(./dev cluster env)"
#   loadtest/cluster_bench.sh seed                 # 1,000 users, through nginx
#   loadtest/cluster_bench.sh read | write         # GET profile (cached) | POST food
#   loadtest/cluster_bench.sh probes [SECS]        # wrk saturates a cached route while
#                                                  # every instance's /api/health and
#                                                  # /readyz are polled: counts non-200s
#
# Each run prints req/s, p50/p99, and the CPU seconds the primary PostgreSQL
# used meanwhile. Knobs: BENCH_SECS (15), BENCH_CONN (64), BENCH_THREADS (2),
# BENCH_USERS (1000), API_KEYS (dev-local-key). Everything shares the box.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${HA_CLUSTER_URL:?run: eval \"\$(./dev cluster env)\"}"
secs=${BENCH_SECS:-15}; conn=${BENCH_CONN:-64}; threads=${BENCH_THREADS:-2}
export BENCH_USERS=${BENCH_USERS:-1000} BENCH_KEY=${API_KEYS:-dev-local-key} BENCH_LUA_DIR="$PWD/loadtest/wrk"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

# CPU seconds (user+system) of every process of the primary PostgreSQL.
primary_cpu() {
  local data ticks=0 p
  data="$(readlink -f .data/pg/data)"
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$data" ]] || continue
    ticks=$((ticks + $(awk '{print $14 + $15}' "$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$ticks"
}

run() { # name lua [BENCH_PATH]
  local name=$1 lua=$2 out c0 c1
  BENCH_PATH=${3:-} wrk -t1 -c8 -d3s -s "loadtest/wrk/$lua" "$HA_CLUSTER_URL" >/dev/null # warm-up
  c0=$(primary_cpu)
  out=$(BENCH_PATH=${3:-} wrk -t"$threads" -c"$conn" -d"${secs}s" --latency -s "loadtest/wrk/$lua" "$HA_CLUSTER_URL")
  c1=$(primary_cpu)
  printf '%-12s %s primary_cpu_s=%s\n' "$name" "$(grep RESULT <<<"$out" | sed 's/RESULT //')" \
    "$(awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", d / hz}')"
}

probes() { # seconds
  local secs=$1 end bad=0 total=0 code u p
  BENCH_PATH=profile wrk -t"$threads" -c"$conn" -d"${secs}s" --latency -s loadtest/wrk/get.lua \
    "$HA_CLUSTER_URL" >/tmp/cluster_bench_wrk.$$ &
  local wrk_pid=$!
  end=$(($(date +%s) + secs))
  while (($(date +%s) < end)); do
    for u in $HA_INSTANCE_URLS; do
      for p in /api/health /readyz; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$u$p" || true)
        total=$((total + 1))
        [[ $code == 200 ]] || { bad=$((bad + 1)); echo "probe $u$p -> $code" >&2; }
      done
    done
    sleep 0.1
  done
  wait "$wrk_pid"
  echo "load: $(grep RESULT /tmp/cluster_bench_wrk.$$ | sed 's/RESULT //')"
  rm -f /tmp/cluster_bench_wrk.$$
  echo "probes: $total, not 200: $bad"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -sr); wrk -t$threads -c$conn -d${secs}s; instances: $(wc -w <<<"$HA_INSTANCE_URLS")"
case "${1:-}" in
  seed)
    seq 1 "$BENCH_USERS" | xargs -P 16 -I{} curl -s -o /dev/null -H "X-API-Key: $BENCH_KEY" \
      -H 'Content-Type: application/json' -d '{"user_id":"bench{}","profile":{"timezone":"Europe/Paris"}}' \
      "$HA_CLUSTER_URL/api/v1/users"
    echo "seeded $BENCH_USERS users" ;;
  read) run "GET profile" get.lua profile ;;
  write) run "POST food" food.lua ;;
  probes) probes "${2:-60}" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
