#!/usr/bin/env bash
# Route benchmarks with wrk against a release build on the local stack.
#
#   loadtest/bench.sh [scenario ...]     scenarios: health xp food profile profile-uncached
#                                        profile-ratelimited (a budget no run reaches: the cost of the check)

#                                        meals meal-search meal-log
#
# Each scenario starts a fresh server (own database `ha_bench`, 1,000 seeded
# users), warms it up, runs wrk, and prints req/s, p50/p99 and the server's
# RSS. Knobs: BENCH_SECS (10), BENCH_CONN (64), BENCH_THREADS (2),
# BENCH_USERS (1000), BENCH_PORT (8100). Load generator, server, PostgreSQL and
# Redis share the machine: compare figures from one run, not across machines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${BENCH_SECS:-10}; conn=${BENCH_CONN:-64}; threads=${BENCH_THREADS:-2}
port=${BENCH_PORT:-8100}; export BENCH_USERS=${BENCH_USERS:-1000}
export BENCH_KEY=bench-key BENCH_LUA_DIR="$PWD/loadtest/wrk"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

./dev stack >/dev/null
eval "$(./dev env)"
base_url=$DATABASE_URL
db_url=${base_url%/*}/ha_bench
cargo build --release --quiet --bin health-agent
bin=target/release/health-agent

pid=""
stop() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap stop EXIT

start() { # extra env...
  ./dev psql -q -c 'DROP DATABASE IF EXISTS ha_bench' -c 'CREATE DATABASE ha_bench' >/dev/null
  DATABASE_URL=$db_url $bin migrate up >/dev/null
  env DATABASE_URL="$db_url" API_KEYS=$BENCH_KEY API_PORT="$port" LOG_LEVEL=warn \
      HEALTH_AGENT__CACHE__NAMESPACE="bench$RANDOM" "$@" $bin serve &
  pid=$!
  for _ in $(seq 100); do curl -fs "localhost:$port/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
  # Seed users through the API, 16 at a time.
  seq 1 "$BENCH_USERS" | xargs -P 16 -I{} curl -s -o /dev/null -H "X-API-Key: $BENCH_KEY" \
    -H 'Content-Type: application/json' -d '{"user_id":"bench{}","profile":{"timezone":"Europe/Paris"}}' \
    "localhost:$port/api/v1/users"
}

seed_meals() { # three saved meals per user; "user id" of each breakfast in $BENCH_MEALS
  export BENCH_MEALS=${BENCH_MEALS:-$(mktemp)}
  seed_one() {
    local u=bench$1 h=(-s -H "X-API-Key: $BENCH_KEY" -H 'Content-Type: application/json')
    curl "${h[@]}" -o /dev/null -d '{"name":"Friday pizza","foods":[{"description":"2 slices pizza"},{"description":"cola"}]}' "localhost:$port/api/v1/users/$u/meals"
    curl "${h[@]}" -o /dev/null -d '{"name":"Green salad","foods":[{"description":"lettuce"},{"description":"tomato"}]}' "localhost:$port/api/v1/users/$u/meals"
    curl "${h[@]}" -d '{"name":"Usual breakfast","keywords":["porridge"],"foods":[{"description":"porridge oats","quantity":"1 cup"},{"description":"banana"},{"description":"coffee with milk","calories":40}]}' \
      "localhost:$port/api/v1/users/$u/meals" | sed -n 's/.*"id":"\([0-9a-f-]*\)".*/'"$u"' \1\n/p'
  }
  export -f seed_one; export port
  seq 1 "$BENCH_USERS" | xargs -P 16 -I{} bash -c 'seed_one {}' > "$BENCH_MEALS"
}

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }

run() { # name lua [BENCH_PATH]
  local name=$1 lua=$2
  BENCH_PATH=${3:-} wrk -t1 -c8 -d3s -s "loadtest/wrk/$lua" "http://127.0.0.1:$port" >/dev/null # warm-up
  local out
  out=$(BENCH_PATH=${3:-} wrk -t"$threads" -c"$conn" -d"${secs}s" --latency -s "loadtest/wrk/$lua" "http://127.0.0.1:$port")
  printf '%-18s %s rss_mb=%s\n' "$name" "$(grep RESULT <<<"$out" | sed 's/RESULT //')" "$(rss_mb)"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -sr); wrk -t$threads -c$conn -d${secs}s"
for s in "${@:-health xp food profile profile-uncached}"; do
  for scenario in $s; do
    case $scenario in
      health) start; run health health.lua ;;
      xp) start; run "GET xp" get.lua xp ;;
      food) start; run "POST food" food.lua ;;
      profile) start; run "GET profile" get.lua profile ;;
      profile-uncached) start ENABLE_CACHE=false; run "GET profile (nocache)" get.lua profile ;;
      profile-ratelimited) start RATE_LIMIT_PER_MINUTE=60000000; run "GET profile (rl)" get.lua profile ;;

      meals) start; seed_meals; run "GET meals" meal.lua list ;;
      meal-search) start; seed_meals; run "GET meals/search" meal.lua search ;;
      meal-log) start; seed_meals; run "POST meals/log" meal.lua log ;;
      *) echo "unknown scenario $scenario" >&2; exit 2 ;;
    esac
    stop
  done
done
