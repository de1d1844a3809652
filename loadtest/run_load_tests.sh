#!/usr/bin/env bash
# The deployment guide's load test (`./load_tests/run_load_tests.sh steady`).
#
#   loadtest/run_load_tests.sh steady|spike|endurance|smoke|all [--start-server] [loadtest options]
#
# Starts the mock LLM (`health-agent mock-llm`, 800 ± 200 ms, 1 % errors) unless
# LLM_MOCK=0, and `health-agent monitor` in the background, then runs the goose
# scenario against HOST (default http://127.0.0.1:8000, the server of
# `./dev up`). For chats to reach the mock, that server must be started with
#   HEALTH_AGENT__LLM__PROVIDER=openai_compatible HEALTH_AGENT__LLM__MODEL=mock \
#   HEALTH_AGENT__LLM__BASE_URL=http://127.0.0.1:8089 ./dev up --release
# (the script warns when the mock saw no chat). --start-server does this
# itself: a server on the local stack with its own database `ha_loadtest`
# (recreated), on LOAD_PORT, pointed at the mock, stopped by PID afterwards.
#
# Options after the scenario go to the goose runner (`loadtest --help`): -u 200,
# -t 10m, --wait 0, --max-p95-ms, --min-rps, ... `all` runs steady, spike and
# endurance (60 min; shorten with -t).
#
# Env: HOST, API_KEY (dev-local-key), LLM_MOCK (1), MOCK_PORT (8089),
#   MOCK_LATENCY_MS (800), MOCK_JITTER_MS (200), MOCK_ERROR_RATE (0.01),
#   LOAD_PORT (8200, with --start-server), PROFILE (release | debug: the
#   binaries `cargo build` makes for tests, quicker to get in CI), MONITOR (1).
# Reports: loadtest/results/<scenario>-<time>.{html,json,csv}, runs.csv (one
# line per run) and monitor-<time>.csv. Exit status: 0 when every scenario passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start_server=0 args=()
for a in "$@"; do
  if [[ $a == --start-server ]]; then start_server=1; else args+=("$a"); fi
done
set -- "${args[@]}"
scenario=${1:-}
case $scenario in
  steady | spike | endurance | smoke) scenarios=("$scenario") ;;
  all) scenarios=(steady spike endurance) ;;
  *)
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
shift

export API_KEY=${API_KEY:-dev-local-key}
mock=${LLM_MOCK:-1}
mock_port=${MOCK_PORT:-8089}
load_port=${LOAD_PORT:-8200}
profile=${PROFILE:-release}
results=loadtest/results
mkdir -p "$results"

say() { printf '==> %s\n' "$*" >&2; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_http() { # url seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

case $profile in
  release) build=(--release); dir=release ;;
  debug) build=(); dir=debug ;;
  *) echo "PROFILE must be release or debug, got $profile" >&2; exit 2 ;;
esac
say "building health-agent and loadtest ($profile)"
cargo build "${build[@]}" --quiet -p health-agent --bin health-agent -p loadtest --bin loadtest
bin=${CARGO_TARGET_DIR:-target}/$dir

pids=()
stop_all() {
  local p
  # Newest first: the server drains before the mock it calls goes away.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    p=${pids[i]}
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 350); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  pids=()
}
trap stop_all EXIT

if [[ $mock == 1 ]]; then
  port_busy "$mock_port" && { echo "port $mock_port is taken: set MOCK_PORT" >&2; exit 2; }
  "$bin/health-agent" mock-llm --port "$mock_port" \
    --latency-ms "${MOCK_LATENCY_MS:-800}" --jitter-ms "${MOCK_JITTER_MS:-200}" \
    --error-rate "${MOCK_ERROR_RATE:-0.01}" --rate-limit-rate 0 >/dev/null &
  pids+=($!)
  wait_http "http://127.0.0.1:$mock_port/__mock/stats" 10 || { echo "the mock LLM did not start" >&2; exit 2; }
  say "mock LLM on :$mock_port, ${MOCK_LATENCY_MS:-800} ± ${MOCK_JITTER_MS:-200} ms, error rate ${MOCK_ERROR_RATE:-0.01}"
fi

if [[ $start_server == 1 ]]; then
  port_busy "$load_port" && { echo "port $load_port is taken: set LOAD_PORT" >&2; exit 2; }
  ./dev stack >/dev/null
  eval "$(./dev env)"
  db_url=${DATABASE_URL%/*}/ha_loadtest
  ./dev psql -q -c 'DROP DATABASE IF EXISTS ha_loadtest' -c 'CREATE DATABASE ha_loadtest' >/dev/null
  DATABASE_URL=$db_url "$bin/health-agent" migrate up >/dev/null
  llm=()
  if [[ $mock == 1 ]]; then
    llm=(HEALTH_AGENT__LLM__PROVIDER=openai_compatible HEALTH_AGENT__LLM__MODEL=mock
      "HEALTH_AGENT__LLM__BASE_URL=http://127.0.0.1:$mock_port")
  fi
  env DATABASE_URL="$db_url" API_KEYS="$API_KEY" API_PORT="$load_port" LOG_LEVEL=warn \
    HEALTH_AGENT__CACHE__NAMESPACE="lt$$" "${llm[@]}" "$bin/health-agent" serve \
    >"$results/server.log" 2>&1 &
  pids+=($!)
  HOST=http://127.0.0.1:$load_port
  wait_http "$HOST/api/health" 30 || { echo "the server did not become healthy: $results/server.log" >&2; exit 2; }
  say "server (pid ${pids[-1]}) on $HOST, database ha_loadtest, log $results/server.log"
fi
host=${HOST:-http://127.0.0.1:8000}
curl -fs -o /dev/null "$host/api/health" || {
  echo "no healthy server at $host: start one (./dev up) or pass --start-server" >&2
  exit 2
}

if [[ ${MONITOR:-1} == 1 ]]; then
  stamp=$(date +%Y%m%d-%H%M%S)
  "$bin/health-agent" monitor --host "$host" --interval 5 --csv "$results/monitor-$stamp.csv" \
    >"$results/monitor-$stamp.log" 2>&1 &
  pids+=($!)
  say "monitor: $results/monitor-$stamp.{log,csv}"
fi

failed=()
for s in "${scenarios[@]}"; do
  say "scenario $s against $host"
  "$bin/loadtest" "$s" -H "$host" --results-dir "$results" "$@" || failed+=("$s")
done

if [[ $mock == 1 ]]; then
  chats=$(curl -fs "http://127.0.0.1:$mock_port/__mock/stats" |
    python3 -c 'import json,sys; s=json.load(sys.stdin)["by_endpoint"]; print(sum(n for e,o in s.items() if "embed" not in e for n in o.values()))' 2>/dev/null || echo "?")
  say "the mock LLM answered $chats chat calls"
  if [[ $chats == 0 ]]; then
    echo "warning: no chat reached the mock: the server at $host answers with its own LLM settings (see the top of $0)" >&2
  fi
fi

if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "PASSED: ${scenarios[*]}"
