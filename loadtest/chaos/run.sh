#!/usr/bin/env bash
# The chaos suite (issue 12.8): mixed load, a fault in the middle, recovery,
# then a verification in PostgreSQL that every acknowledged write exists once
# and nothing is half-written. See loadtest/chaos/README.md.
#
#   loadtest/chaos/run.sh short              CI: first contact, PG SIGKILL, Redis kill,
#                                            failed tool chat, LLM overload
#   loadtest/chaos/run.sh full               every fault and case
#   loadtest/chaos/run.sh NAME...            some of: pg-sigint pg-sigkill pg-sigstop
#                                            redis-kill redis-stop llm-faults
#                                            first-contact failed-tool llm-overload
#                                            late-retry (every keyed write again, after
#                                            the 60 s stale-claim window; last)
#
# It runs its OWN PostgreSQL and Redis (./dev with HA_DATA=.data/chaos and the
# ports below), mock LLM and server, all on 127.0.0.1, and stops them by PID
# when it ends. Env: CHAOS_PG_PORT (18432), CHAOS_REDIS_PORT (18433),
# CHAOS_API_PORT (18480), CHAOS_MOCK_PORT (18481), PROFILE (debug | release),
# CHAOS_LOAD_SECS (short 16, full 30), CHAOS_FAULT_AT (5 | 8 s into the load),
# CHAOS_FAULT_SECS (3 | 6: how long a stop or an outage lasts), CHAOS_WORKERS (12).
# Results: loadtest/results/chaos-<time>/ (summary.tsv, one JSON per step).
# Exit status 0 only when every step passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD

mode=${1:-}
case $mode in
  short) steps=(first-contact pg-sigkill redis-kill failed-tool llm-overload) ;;
  full) steps=(first-contact pg-sigint pg-sigkill pg-sigstop redis-kill redis-stop llm-faults
    failed-tool llm-overload late-retry) ;;
  "" | -h | --help)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
  *) steps=("$@") ;;
esac
short=0
[[ $mode == short ]] && short=1

PG_PORT=${CHAOS_PG_PORT:-18432}
REDIS_PORT=${CHAOS_REDIS_PORT:-18433}
API_PORT=${CHAOS_API_PORT:-18480}
MOCK_PORT=${CHAOS_MOCK_PORT:-18481}
LOAD_SECS=${CHAOS_LOAD_SECS:-$((short ? 16 : 30))}
FAULT_AT=${CHAOS_FAULT_AT:-$((short ? 5 : 8))}
FAULT_SECS=${CHAOS_FAULT_SECS:-$((short ? 3 : 6))}
WORKERS=${CHAOS_WORKERS:-12}
LLM_CAPACITY=16
DATA=$REPO/.data/chaos
URL=http://127.0.0.1:$API_PORT
MOCK=http://127.0.0.1:$MOCK_PORT
DB_URL=postgres://health_agent:health_agent@127.0.0.1:$PG_PORT/ha_chaos
export API_KEY=chaos-key

stamp=$(date +%Y%m%d-%H%M%S)
RUN=$REPO/loadtest/results/chaos-$stamp
mkdir -p "$RUN"
TAG=c$(date +%s)
SUMMARY=$RUN/summary.tsv

say() { printf '==> %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# `json FILE KEY.PATH`: one value of a JSON summary.
json() { python3 -c 'import json,sys
v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1" "$2"; }

case ${PROFILE:-debug} in
  release) build=(--release) dir=release ;;
  debug) build=() dir=debug ;;
  *) echo "PROFILE must be debug or release" >&2; exit 2 ;;
esac
BIN=${CARGO_TARGET_DIR:-target}/$dir

for p in "$PG_PORT" "$REDIS_PORT" "$API_PORT" "$MOCK_PORT"; do
  port_busy "$p" && { echo "port $p is taken: set the CHAOS_*_PORT variables" >&2; exit 2; }
done

say "building health-agent and chaos (${PROFILE:-debug})"
cargo build "${build[@]}" --quiet -p health-agent --bin health-agent -p loadtest --bin chaos
say "built in ${SECONDS}s"

# ---------------------------------------------------------------------------
# Our processes: every one is stopped by PID when the script ends.
# ---------------------------------------------------------------------------
devx() { HA_DATA=$DATA HA_PG_PORT=$PG_PORT HA_REDIS_PORT=$REDIS_PORT ./dev "$@"; }
wheel=$REPO/.data/cache/pgserver-0.1.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
[[ -f $wheel ]] && export HA_PGSERVER_WHEEL=$wheel
pids=()     # mock, server, loads
stopped=()  # processes under SIGSTOP right now

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${stopped[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    p=${pids[i]}
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  [[ -d $DATA ]] && devx down >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_home() { readlink -f "$DATA/pg"; }
pg_master() { head -n1 "$(pg_home)/data/postmaster.pid" 2>/dev/null; }
# The postmaster and its children: our binary, our data directory as cwd.
pg_all() {
  local exe data p
  exe=$(readlink -f "$(pg_home)/install/pgserver/pginstall/bin/postgres")
  data=$(readlink -f "$(pg_home)/data")
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/exe" 2>/dev/null)" == "$exe" && "$(readlink "$p/cwd" 2>/dev/null)" == "$data" ]] &&
      echo "${p#/proc/}"
  done
}
redis_pid() { head -n1 "$DATA/redis/redis.pid" 2>/dev/null; }
wait_gone() { # pid seconds
  for _ in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}
wait_healthy() { # seconds
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$URL/api/health")" == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}
mock_config() { curl -fs -m 5 -o /dev/null -X POST -H 'content-type: application/json' -d "$1" "$MOCK/__mock/config"; }
MOCK_NORMAL='{"latency_ms":30,"jitter_ms":10,"error_rate":0,"rate_limit_rate":0,"timeout_rate":0,"malformed_rate":0,"script":[]}'

say "stack: PostgreSQL :$PG_PORT, Redis :$REDIS_PORT (data $DATA)"
devx stack 2>"$RUN/stack.log" || { cat "$RUN/stack.log" >&2; exit 1; }
devx psql -q -c 'DROP DATABASE IF EXISTS ha_chaos' -c 'CREATE DATABASE ha_chaos' >/dev/null
DATABASE_URL=$DB_URL "$BIN/health-agent" migrate up >"$RUN/migrate.log" 2>&1

"$BIN/health-agent" mock-llm --port "$MOCK_PORT" --latency-ms 30 --jitter-ms 10 \
  --error-rate 0 --rate-limit-rate 0 --seed 1 >"$RUN/mock.log" 2>&1 &
pids+=($!)

start_server() {
  # A small LLM gate (so 10x its capacity is cheap) and a short retry budget
  # (so a failing model answers in seconds).
  env DATABASE_URL="$DB_URL" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" API_KEYS="$API_KEY" \
    API_PORT="$API_PORT" LOG_LEVEL=warn HEALTH_AGENT__CACHE__NAMESPACE="chaos$$" \
    HEALTH_AGENT__LLM__PROVIDER=openai_compatible HEALTH_AGENT__LLM__MODEL=mock \
    HEALTH_AGENT__LLM__BASE_URL="$MOCK" HEALTH_AGENT__LLM__RETRY_BUDGET_MS=2000 \
    HEALTH_AGENT__ACTORS__LLM__MAILBOX_CAPACITY=$LLM_CAPACITY \
    "$BIN/health-agent" serve >>"$RUN/server.log" 2>&1 &
  pids+=($!)
  wait_healthy 60 || { tail -n 30 "$RUN/server.log" >&2; echo "the server did not become healthy" >&2; exit 1; }
}
start_server
say "server on $URL (log $RUN/server.log), mock LLM on $MOCK, results in $RUN"

printf 'step\trequests\tacknowledged\tlost\tduplicated\tbroken_invariants\trecovery_ms\tpass\tnote\n' >"$SUMMARY"
failed=()
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$SUMMARY"; }

# ---------------------------------------------------------------------------
# Faults: inject_X stops something, recover_X brings it back.
# ---------------------------------------------------------------------------
inject_pg-sigint() { local m; m=$(pg_master); kill -INT "$m"; wait_gone "$m" 30; }
recover_pg-sigint() { devx stack 2>>"$RUN/stack.log"; }
inject_pg-sigkill() { kill -KILL "$(pg_master)"; }
recover_pg-sigkill() { devx stack 2>>"$RUN/stack.log"; }
inject_pg-sigstop() { mapfile -t stopped < <(pg_all); kill -STOP "${stopped[@]}"; }
recover_pg-sigstop() { kill -CONT "${stopped[@]}"; stopped=(); }
inject_redis-kill() { local r; r=$(redis_pid); kill -KILL "$r"; wait_gone "$r" 10; }
recover_redis-kill() { devx stack 2>>"$RUN/stack.log"; }
inject_redis-stop() { stopped=("$(redis_pid)"); kill -STOP "${stopped[@]}"; }
recover_redis-stop() { kill -CONT "${stopped[@]}"; stopped=(); }
inject_llm-faults() { mock_config '{"latency_ms":2500,"jitter_ms":1500,"error_rate":0.3}'; }
recover_llm-faults() { mock_config "$MOCK_NORMAL"; }

verify() { # name files...
  local name=$1 out=$RUN/verify-$1.json
  shift
  "$BIN/chaos" verify --database-url "$DB_URL" "$@" >"$out" || true
  [[ $(json "$out" pass) == True ]]
}

run_fault() {
  local f=$1 acks=$RUN/acks-$1.jsonl load=$RUN/load-$1.json lp t0 t1 t2 rec ok=1
  say "$f: ${LOAD_SECS}s of mixed load, fault at ${FAULT_AT}s for ${FAULT_SECS}s"
  mock_config "$MOCK_NORMAL"
  "$BIN/chaos" load --url "$URL" --tag "$TAG-$f" --secs "$LOAD_SECS" --workers "$WORKERS" \
    --out "$acks" >"$load" &
  lp=$!
  pids+=("$lp")
  sleep "$FAULT_AT"
  t0=$(now_ms)
  "inject_$f"
  sleep "$FAULT_SECS"
  t1=$(now_ms)
  "recover_$f"
  if wait_healthy 60; then t2=$(now_ms); rec=$((t2 - t1)); else t2=$(now_ms) rec=never ok=0; fi
  wait "$lp" || ok=0
  verify "$f" "$acks" || ok=0
  local v=$RUN/verify-$f.json broken
  broken=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["invariants"].values()))' "$v" 2>/dev/null || echo "?")
  row "$f" "$(json "$load" requests)" "$(json "$load" acknowledged)" "$(json "$v" lost)" \
    "$(json "$v" duplicated)" "$broken" "$rec" "$ok" \
    "outage $((t2 - t0))ms; unacked $(json "$load" unacknowledged); 4xx $(json "$load" rejected_4xx); replay mismatches $(json "$load" replay_mismatch)"
  ((ok)) || failed+=("$f")
  say "$f: $(tail -n1 "$SUMMARY" | tr '\t' ' ') [${SECONDS}s since start]"
}

run_case() {
  local c=$1 out=$RUN/case-$1.json ok=1
  say "$c"
  mock_config "$MOCK_NORMAL"
  case $c in
    first-contact)
      "$BIN/chaos" first-contact --url "$URL" --tag "$TAG-fc" --out "$RUN/acks-$c.jsonl" >"$out" || ok=0
      row "$c" "$(json "$out" requests)" "$(json "$out" acknowledged)" - - - - "$ok" "chat 404s: $(json "$out" chat_404)"
      ;;
    failed-tool)
      "$BIN/chaos" failed-tool --url "$URL" --mock-url "$MOCK" --database-url "$DB_URL" --tag "$TAG-ft" >"$out" || ok=0
      row "$c" 5 1 - - - - "$ok" "after 3 failures food/xp/history $(json "$out" after_failures.food)/$(json "$out" after_failures.xp)/$(json "$out" after_failures.history); after retry $(json "$out" after_retry.food)/$(json "$out" after_retry.xp)/$(json "$out" after_retry.history)"
      ;;
    llm-overload)
      local secs=$((short ? 4 : 10))
      "$BIN/chaos" llm-overload --url "$URL" --mock-url "$MOCK" --capacity "$LLM_CAPACITY" \
        --secs "$secs" --tag "$TAG-lo" --out "$RUN/acks-$c.jsonl" >"$out" || ok=0
      row "$c" - "$(json "$out" ok)" - - - - "$ok" "completions $(json "$out" completions), discarded $(json "$out" discarded); goodput $(json "$out" overload_chats_per_s)/s vs peak $(json "$out" peak_chats_per_s)/s"
      ;;
  esac
  mock_config "$MOCK_NORMAL"
  ((ok)) || failed+=("$c")
  say "$c: $(tail -n1 "$SUMMARY" | tr '\t' ' ') [${SECONDS}s since start]"
}

# A crash can leave a key claimed (its release never reached the database);
# the claim goes stale after 60 s, and a retry then must still not write twice.
late_retry() {
  local out=$RUN/case-late-retry.json ok=1 files
  shopt -s nullglob
  files=("$RUN"/acks-*.jsonl)
  shopt -u nullglob
  say "late-retry: waiting 61 s for stale claims, then every keyed write again"
  sleep 61
  "$BIN/chaos" late-retry --url "$URL" --tag "$TAG-lr" --out "$RUN/late.jsonl" "${files[@]}" >"$out" || ok=0
  # Checked with everything else by the final verification.
  [[ ! -f $RUN/late.jsonl ]] || mv "$RUN/late.jsonl" "$RUN/acks-late-retry.jsonl"
  row late-retry "$(json "$out" requests)" "$(json "$out" acknowledged)" - - - - "$ok" \
    "replay mismatches $(json "$out" replay_mismatch); unacked $(json "$out" unacknowledged); 4xx $(json "$out" rejected_4xx)"
  ((ok)) || failed+=(late-retry)
  say "late-retry: $(tail -n1 "$SUMMARY" | tr '\t' ' ') [${SECONDS}s since start]"
}

for s in "${steps[@]}"; do
  case $s in
    pg-sigint | pg-sigkill | pg-sigstop | redis-kill | redis-stop | llm-faults) run_fault "$s" ;;
    first-contact | failed-tool | llm-overload) run_case "$s" ;;
    late-retry) late_retry ;;
    *) echo "unknown step: $s" >&2; exit 2 ;;
  esac
done

# Everything the run wrote, checked together once more at the end.
shopt -s nullglob
all=("$RUN"/acks-*.jsonl)
if ((${#all[@]})); then
  if verify all "${all[@]}"; then ok=1; else ok=0; failed+=(all); fi
  v=$RUN/verify-all.json
  row all - "$(json "$v" acknowledged)" "$(json "$v" lost)" "$(json "$v" duplicated)" \
    "$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["invariants"].values()))' "$v")" - "$ok" \
    "pending idempotency claims $(json "$v" pending_idempotency_claims) (with their write stored: $(json "$v" pending_claims_with_write))"
fi

# The verifier must be able to fail: with the server stopped, damage a copy
# of what the run stored (lose an acknowledged food row, duplicate a reminder,
# drop an XP event and an assistant row) and expect each to be reported.
if ((${#all[@]})) && ! ((${#failed[@]})); then
  say "verifier self-test: damaging the stored data on purpose"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
  pids=()
  victim=$(python3 -c 'import json,sys
for f in sys.argv[1:]:
    for l in open(f):
        r=json.loads(l)
        if r["kind"]=="food" and r["ack"]: print(r["marker"]); sys.exit()' "${all[@]}")
  devx psql -q -d ha_chaos -v victim="$victim" >/dev/null <<'SQL'
DELETE FROM food_entries WHERE description = :'victim';
INSERT INTO reminders (user_id, kind, message, daily_time, timezone)
  SELECT user_id, kind, message, daily_time, timezone FROM reminders
   WHERE message LIKE 'chaosreminder-%' LIMIT 1;
DELETE FROM xp_events WHERE id = (SELECT x.id FROM xp_events x
  JOIN food_entries f ON x.source_key = 'food:' || f.id LIMIT 1);
DELETE FROM conversation_history WHERE id = (SELECT id FROM conversation_history
  WHERE role = 'assistant' LIMIT 1);
SQL
  "$BIN/chaos" verify --database-url "$DB_URL" "${all[@]}" >"$RUN/verify-selftest.json" || true
  caught=$(python3 -c 'import json,sys
v=json.load(open(sys.argv[1])); i=v["invariants"]
print(int(not v["pass"] and v["lost"] >= 1 and v["duplicated"] >= 1
          and i["food_without_xp_event"] >= 1 and i["user_message_without_answer"] >= 1))' "$RUN/verify-selftest.json")
  row verifier-selftest - - "$(json "$RUN/verify-selftest.json" lost)" "$(json "$RUN/verify-selftest.json" duplicated)" \
    "$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["invariants"].values()))' "$RUN/verify-selftest.json")" \
    - "$caught" "damage made on purpose must be reported"
  ((caught)) || failed+=(verifier-selftest)
fi

echo
column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
if ((${#failed[@]})); then
  echo "CHAOS FAILED: ${failed[*]} (details: $RUN)" >&2
  for f in "${failed[@]}"; do
    for j in "$RUN/verify-$f.json" "$RUN/case-$f.json" "$RUN/load-$f.json"; do
      [[ -f $j ]] && cat "$j" >&2
    done
  done
  exit 1
fi
echo "CHAOS PASSED: ${steps[*]} (${SECONDS}s)"
