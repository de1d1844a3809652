#!/usr/bin/env bash
# LLM overload (issue 12, item 3): goodput and refusals at 1×, 3×, 10× and
# 30× the LlmActor family's capacity, against the mock at a fixed latency.
#
#   loadtest/overload_llm.sh            (OV_CAP=128 OV_LATENCY_MS=2000 OV_SECS=20 OV_MULTIPLES="1 3 10 30" OV_RETRY_AFTER=0 OV_CONNS=)
#
# Each multiple runs `chatload closed` with CAP × multiple clients chatting
# back to back. Reported per multiple: goodput (200s a second), the 200s'
# and the 503s' latency p50/p99, completions the mock made vs. chats that
# answered 200 (the difference was paid for and thrown away), and the
# server's RSS at the peak and 10 s after. Own server, mock and database
# (ha_overload) on 127.0.0.1; the dev stack's PostgreSQL and Redis.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cap=${OV_CAP:-128}; latency=${OV_LATENCY_MS:-2000}; secs=${OV_SECS:-20}
# OV_RETRY_AFTER=1: refused clients wait as Retry-After says (else 50 ms).
retry_flag=(); [[ ${OV_RETRY_AFTER:-0} == 1 ]] && retry_flag=(--honour-retry-after)
multiples=${OV_MULTIPLES:-1 3 10 30}
port=${OV_PORT:-8120}; mock_port=${OV_MOCK_PORT:-8129}; key=overload-key

mkdir -p loadtest/results
log=loadtest/results/overload-llm-$(date +%Y%m%d-%H%M%S).log
exec > >(tee "$log") 2>&1

./dev stack >/dev/null
eval "$(./dev env)"
db_url=${DATABASE_URL%/*}/ha_overload
cargo build --release --quiet -p health-agent --bin health-agent -p loadtest --bin chatload
bin=${CARGO_TARGET_DIR:-target}/release
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

pid="" mock=""
stop() { # pid...
  local p
  for p in "$@"; do
    [[ -n $p ]] || continue
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
}
trap 'stop "$pid" "$mock"' EXIT
wait_http() { for _ in $(seq 150); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
rss() { awk '$1 == "VmRSS:" {printf "%.0f", $2/1024}' "/proc/$1/status"; }
mock_api() { curl -fs "http://127.0.0.1:$mock_port/__mock/$1" "${@:2}"; }

./dev psql -q -c 'DROP DATABASE IF EXISTS ha_overload' -c 'CREATE DATABASE ha_overload' >/dev/null
DATABASE_URL=$db_url $bin/health-agent migrate up >/dev/null

$bin/health-agent mock-llm --port "$mock_port" --latency-ms "$latency" --jitter-ms 0 \
  --error-rate 0 --rate-limit-rate 0 --seed 1 >/dev/null &
mock=$!
wait_http "http://127.0.0.1:$mock_port/__mock/stats"

env DATABASE_URL="$db_url" API_KEYS=$key API_PORT="$port" LOG_LEVEL=error \
  HEALTH_AGENT__CACHE__NAMESPACE="ov$RANDOM" HEALTH_AGENT__ACTORS__LLM__MAILBOX_CAPACITY="$cap" \
  HEALTH_AGENT__LLM__PROVIDER=openai_compatible HEALTH_AGENT__LLM__MODEL=mock \
  "HEALTH_AGENT__LLM__BASE_URL=http://127.0.0.1:$mock_port" \
  $bin/health-agent serve &
pid=$!
wait_http "http://127.0.0.1:$port/api/health"
url=http://127.0.0.1:$port
API_KEY=$key $bin/chatload seed --url "$url" --users 1000 >/dev/null

echo "machine: $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r)"
echo "llm capacity $cap, mock latency ${latency} ms, ${secs} s per multiple; idle RSS $(rss "$pid") MB"
# OV_CONNS: client counts instead of multiples of the capacity (the tuning
# curves hold the load fixed while the capacity changes).
for m in ${OV_CONNS:-$multiples}; do
  if [[ -n ${OV_CONNS:-} ]]; then conns=$m; else conns=$((cap * m)); fi
  mock_api config -H 'content-type: application/json' -d '{"reset_stats": true}' >/dev/null
  peak=0
  (while kill -0 "$pid" 2>/dev/null; do rss "$pid"; echo; sleep 1; done) >"$log.rss" &
  sampler=$!
  line=$(API_KEY=$key $bin/chatload closed --url "$url" --users 1000 --conns "$conns" \
    --secs "$secs" --warmup-secs 3 "${retry_flag[@]}" | grep '^RESULT')
  kill "$sampler" 2>/dev/null || true
  peak=$(sort -n "$log.rss" | tail -1)
  completions=$(mock_api stats | python3 -c 'import json,sys; s=json.load(sys.stdin)["by_endpoint"]; print(sum(sum(v.values()) for k,v in s.items() if "chat" in k or "messages" in k))')
  ok_total=$(sed -E 's/.*ok_total=([0-9]+).*/\1/' <<<"$line")
  wasted=$((completions - ok_total))
  sleep 10
  echo "${m}x: ${line#RESULT } completions=$completions discarded=$wasted discarded_pct=$(awk -v w="$wasted" -v c="$completions" 'BEGIN {printf "%.2f", c ? 100*w/c : 0}') rss_peak_mb=$peak rss_after_10s_mb=$(rss "$pid")"
done
rm -f "$log.rss"
