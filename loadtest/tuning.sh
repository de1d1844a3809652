#!/usr/bin/env bash
# Tuning curves (issue 16 item 4): goodput, p50/p99 and the 503 rate of the
# DB and LLM families as their knobs change, at fixed loads, for
# ARCHITECTURE.md's tuning section. Runs the overload benchmarks once per
# setting (release build, own server and database on the local stack).
#
#   loadtest/tuning.sh [db] [llm]      (default: db llm)
#
#   db   POST food on closed-loop connections (overload.sh db):
#        database.pool_max_size × actors.db.mailbox_capacity at TUNE_DB_LOADS
#   llm  chats against the mock at TUNE_LLM_LATENCY_MS (overload_llm.sh):
#        actors.llm.mailbox_capacity at TUNE_LLM_LOADS clients
#
# Knobs: TUNE_POOLS ("8 16 32"), TUNE_DB_CAPS ("64 1024"), TUNE_DB_LOADS
# ("32 256"), TUNE_LLM_CAPS ("16 64 256"), TUNE_LLM_LOADS ("32 256"),
# TUNE_LLM_LATENCY_MS (100), TUNE_SECS (8).
# Output: a markdown table per family on stdout and in
# loadtest/results/tuning-<time>.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${TUNE_SECS:-8}
mkdir -p loadtest/results
log=loadtest/results/tuning-$(date +%Y%m%d-%H%M%S).log
exec > >(tee "$log") 2>&1

# A RESULT field; "–" where it has no sample (NaN, or 0.0 for an empty set).
field() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<" $2" | sed -E 's/^(NaN|0\.0)$/–/'; }

tune_db() {
  echo "### DB family: POST food, closed loop, ${secs} s per point"
  echo
  echo "| pool_max_size | mailbox_capacity | clients | goodput/s | 503/s | 503 % | ok p50 / p99 ms | 503 p99 ms |"
  echo "|---|---|---|---|---|---|---|---|"
  local pool cap line c
  for pool in ${TUNE_POOLS:-8 16 32}; do
    for cap in ${TUNE_DB_CAPS:-64 1024}; do
      HEALTH_AGENT__DATABASE__POOL_MAX_SIZE=$pool HEALTH_AGENT__ACTORS__DB__MAILBOX_CAPACITY=$cap \
        OVL_LEVELS="${TUNE_DB_LOADS:-32 256}" OVL_SECS=$secs OVL_DB_BASELINE=0 OVL_AFTER="" \
        loadtest/overload.sh db >/tmp/tune-db-$$.out 2>&1
      while read -r c line; do
        local ok shed
        ok=$(field goodput_per_s "$line"); shed=$(field shed_per_s "$line")
        echo "| $pool | $cap | $c | $ok | $shed | $(awk -v s="$shed" -v o="$ok" 'BEGIN {printf "%.0f", (s + o) ? 100 * s / (s + o) : 0}') | $(field ok_p50_ms "$line") / $(field ok_p99_ms "$line") | $(field shed_p99_ms "$line") |"
      done < <(grep -E '^[0-9]+ +conns=' /tmp/tune-db-$$.out)
    done
  done
  rm -f /tmp/tune-db-$$.out
  echo
}

tune_llm() {
  local latency=${TUNE_LLM_LATENCY_MS:-100}
  echo "### LLM family: chats, closed loop, mock at ${latency} ms, ${secs} s per point"
  echo
  echo "| mailbox_capacity | clients | goodput/s | 503/s | 503 % | ok p50 / p99 ms | 503 p99 ms | completions discarded |"
  echo "|---|---|---|---|---|---|---|---|"
  local cap line c
  for cap in ${TUNE_LLM_CAPS:-16 64 256}; do
    OV_CAP=$cap OV_LATENCY_MS=$latency OV_SECS=$secs OV_CONNS="${TUNE_LLM_LOADS:-32 256}" \
      loadtest/overload_llm.sh >/tmp/tune-llm-$$.out 2>&1
    while IFS= read -r line; do
      local ok refused per
      c=$(field conns "$line"); ok=$(field goodput_per_s "$line")
      refused=$(field refused_503 "$line")
      per=$(awk -v r="$refused" -v s="$secs" 'BEGIN {printf "%.1f", r / s}')
      echo "| $cap | $c | $ok | $per | $(awk -v r="$per" -v o="$ok" 'BEGIN {printf "%.0f", (r + o) ? 100 * r / (r + o) : 0}') | $(field ok_p50_ms "$line") / $(field ok_p99_ms "$line") | $(field refused_p99_ms "$line") | $(field discarded "$line") |"
    done < <(grep -E '^[0-9]+x: ' /tmp/tune-llm-$$.out)
  done
  rm -f /tmp/tune-llm-$$.out
  echo
}

echo "machine: $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r); generator on the same cores"
echo
for w in "${@:-db llm}"; do
  for what in $w; do
    case $what in
      db) tune_db ;;
      llm) tune_llm ;;
      *) echo "unknown: $what (db llm)" >&2; exit 2 ;;
    esac
  done
done
