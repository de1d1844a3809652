#!/usr/bin/env bash
# Capacity benchmarks (issue 7, table a–g) on the local stack, release builds.
#
#   loadtest/capacity.sh [g a b c f d e ...]     (default: g a b c f d e)
#
#   g  idle RSS of a fresh server (VmRSS after start-up and 5 s idle)
#   a  bare actix-web JSON (`hello`) vs. our cached GET profile: ratio
#   b  DbActor vs. direct pool: `cargo bench -p actors --bench db_actor`
#   c  bare actix-web + bb8 query_typed (`pgselect`) vs. our GET xp with
#      ENABLE_CACHE=false: ratio
#   f  bare actix-web health JSON (`hello`) vs. our GET /api/health: ratio;
#      and the time to 503 when PostgreSQL stops
#      answering (a TCP proxy of ours is frozen with SIGSTOP; the shared
#      PostgreSQL is not touched)
#   d  chat overhead (end-to-end − fixed mock latency) at rising open-loop
#      rates: the highest chats/s whose overhead p95 ≤ 5 ms (`chatload rate`;
#      `chatload sweep` bisects the same way)
#   e  10,000 concurrent chats, mock at 1 s, CAP_E_RUNS times: p95, errors,
#      server peak RSS,
#      and its RSS 5, 30 and 60 s after
#   h  CPU per chat of the server, PostgreSQL and Redis apart, from
#      /proc/<pid>/stat around CAP_H_SECS of chats at CAP_H_RPS (mock at
#      100 ms; the generator and the mock are not counted)
#
# Every HTTP figure is wrk (-t CAP_THREADS -c CAP_CONN -d CAP_SECS, after a
# 3 s warm-up) or chatload on this same machine. a and c alternate the two
# sides for CAP_ROUNDS rounds and compare medians, so a build or a noisy
# neighbour hits both. Knobs: CAP_SECS (10), CAP_CONN (64), CAP_THREADS (2),
# CAP_ROUNDS (3), CAP_USERS (1000), CAP_PORT (8100), CAP_MOCK_PORT (8189),
# CAP_BIN (a directory of prebuilt binaries instead of building this tree),
# CAP_D_LATENCY_MS (100), CAP_D_LIMIT_MS (5), CAP_D_RATES (25 100 250 500 1000
# 1500 2000), CAP_E_N (10000), CAP_E_RUNS (3), CAP_H_RPS (500), CAP_H_SECS (20).
# Output: stdout and loadtest/results/capacity-<time>.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${CAP_SECS:-10}; conn=${CAP_CONN:-64}; threads=${CAP_THREADS:-2}
rounds=${CAP_ROUNDS:-3}; users=${CAP_USERS:-1000}
port=${CAP_PORT:-8100}; bare_port=$((port + 10)); mock_port=${CAP_MOCK_PORT:-8189}
key=bench-key
export BENCH_USERS=$users BENCH_KEY=$key BENCH_LUA_DIR="$PWD/loadtest/wrk" API_KEY=$key
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

mkdir -p loadtest/results
log=loadtest/results/capacity-$(date +%Y%m%d-%H%M%S).log
exec > >(tee "$log") 2>&1

./dev stack >/dev/null
eval "$(./dev env)"
# Databases left by test runs keep autovacuum busy and skew every figure
# (RESULTS.md, round 1). `./dev test` drops them; say so if any are here.
left=$(./dev psql -Atq -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'ha\_test\_%'")
((left == 0)) || echo "warning: $left ha_test_* databases are left from test runs; \`./dev test\` drops them" >&2
db_url=${DATABASE_URL%/*}/ha_bench
# CAP_BIN: a directory holding another build's health-agent and chatload,
# to compare builds side by side (loadtest/interleave.sh); with its own
# config/ beside them if its settings differ from this tree's.
if [[ -n ${CAP_BIN:-} ]]; then
  bin=$CAP_BIN
  # An older build reads its own settings (a config/ copied next to it).
  [[ -d $bin/config ]] && export CONFIG_DIR=$bin/config
else
  cargo build --release --quiet -p health-agent --bin health-agent -p loadtest --bins
  bin=${CARGO_TARGET_DIR:-target}/release
fi

# The server holds a socket per client and per model call in e: as many
# descriptors as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

pid="" bare="" mock="" proxy=""
stop() { # pid...
  local p
  for p in "$@"; do
    [[ -n $p ]] || continue
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
}
cleanup() { stop "$pid" "$bare" "$mock" "$proxy"; }
trap cleanup EXIT

wait_http() { # url
  for _ in $(seq 150); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

fresh_db() {
  ./dev psql -q -c 'DROP DATABASE IF EXISTS ha_bench' -c 'CREATE DATABASE ha_bench' >/dev/null
  DATABASE_URL=$db_url $bin/health-agent migrate up >/dev/null
}

start_server() { # extra env...
  env DATABASE_URL="$db_url" API_KEYS=$key API_PORT="$port" LOG_LEVEL=warn \
    HEALTH_AGENT__CACHE__NAMESPACE="cap$RANDOM" "$@" $bin/health-agent serve &
  pid=$!
  wait_http "http://127.0.0.1:$port/api/health"
}
stop_server() { stop "$pid"; pid=""; }

start_mock() { # latency_ms
  $bin/health-agent mock-llm --port "$mock_port" --latency-ms "$1" --jitter-ms 0 \
    --error-rate 0 --rate-limit-rate 0 --seed 1 >/dev/null &
  mock=$!
  wait_http "http://127.0.0.1:$mock_port/__mock/stats"
}
mock_env=(HEALTH_AGENT__LLM__PROVIDER=openai_compatible HEALTH_AGENT__LLM__MODEL=mock
  "HEALTH_AGENT__LLM__BASE_URL=http://127.0.0.1:$mock_port")

# Busy time of all CPUs so far, in USER_HZ ticks (/proc/stat: all but idle and iowait).
busy_jiffies() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# CPU ticks of a process (all its threads) and of its children it has reaped.
ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The postmaster and its live backends: a backend that exited is in the
# postmaster's reaped-children ticks.
pg_ticks() { # postmaster pid
  local t c
  t=$(ticks "$1")
  for c in $(cat /proc/"$1"/task/*/children); do t=$((t + $(ticks "$c"))); done
  echo "$t"
}
rss() { awk -v f="$2" '$1 == f":" {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# wrk, after a warm-up; prints the RESULT fields, sets $rps.
wrk_run() { # url lua [BENCH_PATH]
  BENCH_PATH=${3:-} wrk -t1 -c8 -d3s -s "loadtest/wrk/$2" "$1" >/dev/null
  local out
  out=$(BENCH_PATH=${3:-} wrk -t"$threads" -c"$conn" -d"${secs}s" --latency -s "loadtest/wrk/$2" "$1")
  line=$(grep RESULT <<<"$out" | sed 's/RESULT //')
  rps=$(sed -E 's/.*req\/s=([0-9]+).*/\1/' <<<"$line")
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }

# Our server vs. a bare one, alternating; prints medians and the ratio.
compare() { # label path lua bare_bin [server env...]
  local label=$1 path=$2 lua=$3 bare_bin=$4; shift 4
  local ours=() theirs=() i
  for ((i = 1; i <= rounds; i++)); do
    start_server "$@"
    wrk_run "http://127.0.0.1:$port" "$lua" "$path"
    ours+=("$rps"); echo "  round $i ours:  $line rss_mb=$(rss "$pid" VmRSS)"
    stop_server
    DATABASE_URL=$db_url $bin/"$bare_bin" "$bare_port" >/dev/null &
    bare=$!
    wait_http "http://127.0.0.1:$bare_port${wait_path:-/api/v1/users/bench1/$path}"
    wrk_run "http://127.0.0.1:$bare_port" "$lua" "$path"
    theirs+=("$rps"); echo "  round $i $bare_bin: $line rss_mb=$(rss "$bare" VmRSS)"
    stop "$bare"; bare=""
  done
  local mo mt
  mo=$(printf '%s\n' "${ours[@]}" | median); mt=$(printf '%s\n' "${theirs[@]}" | median)
  echo "RESULT $label: ours ${mo} req/s (${ours[*]}), $bare_bin ${mt} req/s (${theirs[*]}), ratio $(ratio "$mo" "$mt")"
}

bench_g() {
  echo "== g: idle RSS after start-up"
  start_server
  sleep 5
  echo "RESULT g: idle VmRSS $(rss "$pid" VmRSS) MB (peak VmHWM $(rss "$pid" VmHWM) MB), $(awk '/Threads/ {print $2}' "/proc/$pid/status") threads"
  stop_server
}

bench_a() {
  echo "== a: bare actix-web JSON vs. our cached GET profile (wrk -t$threads -c$conn -d${secs}s, $rounds rounds)"
  compare "a (GET profile, cached)" profile get.lua hello
}

bench_b() {
  echo "== b: DbActor vs. direct pool (cargo bench -p actors --bench db_actor)"
  cargo bench --quiet -p actors --bench db_actor 2>&1 | grep -v '^$'
}

bench_c() {
  echo "== c: bare actix-web + bb8 query_typed vs. our GET xp, cache off (wrk -t$threads -c$conn -d${secs}s, $rounds rounds)"
  compare "c (GET xp, ENABLE_CACHE=false)" xp get.lua pgselect ENABLE_CACHE=false
}

bench_f() {
  echo "== f: bare actix-web health JSON vs. our GET /api/health (wrk -t$threads -c$conn -d${secs}s, $rounds rounds)"
  wait_path=/api/health compare "f (GET /api/health)" "" health.lua hello
  # Outage: the server reaches PostgreSQL through a proxy that SIGSTOP freezes.
  local pg=${DATABASE_URL#*@}; pg=${pg%%/*}
  local proxy_port=$((port + 20))
  python3 - "$proxy_port" "${pg%:*}" "${pg##*:}" <<'PY' &
import asyncio, sys
port, host, target = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data); await w.drain()
    finally:
        w.close()
async def serve(cr, cw):
    ur, uw = await asyncio.open_connection(host, target)
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw), return_exceptions=True)
async def main():
    async with await asyncio.start_server(serve, "127.0.0.1", port) as s:
        await s.serve_forever()
asyncio.run(main())
PY
  proxy=$!
  sleep 0.5
  db_url_saved=$db_url
  db_url=${db_url/@$pg/@127.0.0.1:$proxy_port}
  start_server
  db_url=$db_url_saved
  local t0 t1 code
  kill -STOP "$proxy"
  t0=$(date +%s%N)
  while :; do
    code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/api/health")
    t1=$(date +%s%N)
    [[ $code == 503 ]] && break
    (((t1 - t0) > 5000000000)) && break
    sleep 0.02
  done
  echo "RESULT f outage: /api/health answered $code $(((t1 - t0) / 1000000)) ms after PostgreSQL stopped answering"
  kill -CONT "$proxy"
  t0=$(date +%s%N)
  wait_http "http://127.0.0.1:$port/api/health"
  echo "RESULT f recovery: 200 again $((($(date +%s%N) - t0) / 1000000)) ms after it answered again"
  stop_server
  stop "$proxy"; proxy=""
}

bench_d() {
  local lat=${CAP_D_LATENCY_MS:-100} limit=${CAP_D_LIMIT_MS:-5} best=none r out o f
  echo "== d: chat overhead vs. rate, mock at ${lat} ms fixed (chatload rate, open loop, ${secs}s per rate)"
  start_mock "$lat"
  start_server "${mock_env[@]}"
  for r in ${CAP_D_RATES:-25 100 250 500 1000 1500 2000}; do
    out=$($bin/chatload rate --url "http://127.0.0.1:$port" --users "$users" --latency-ms "$lat" \
      --rps "$r" --secs "$secs")
    echo "$out"
    o=$(sed -E 's/.*overhead_p95_ms=([0-9.]+).*/\1/' <<<"$out")
    f=$(sed -E 's/.*failures=([0-9]+).*/\1/' <<<"$out")
    if [[ $f == 0 ]] && awk -v o="$o" -v l="$limit" 'BEGIN {exit !(o <= l)}'; then best=$r; fi
    # Past saturation the queue only grows: stop.
    awk -v o="$o" -v l="$lat" 'BEGIN {exit !(o > 10 * l)}' && break
    sleep 2
  done
  echo "RESULT d: highest rate with overhead p95 <= ${limit} ms and no failures: $best chats/s"
  echo "server rss_mb=$(rss "$pid" VmRSS) peak=$(rss "$pid" VmHWM)"
  stop_server
  stop "$mock"; mock=""
}

bench_e() {
  local n=${CAP_E_N:-10000} runs=${CAP_E_RUNS:-3} r out at fails=() hwm=() at60=()
  echo "== e: $n concurrent chats, mock at 1000 ms fixed (ulimit -n $(ulimit -n)), $runs runs"
  start_mock 1000
  for ((r = 1; r <= runs; r++)); do
    # Room for every chat in the mailboxes and time to wait for a pooled
    # connection: the defaults (llm 256, db 1024, 2 s) answer most of them 503
    # at once, by design. No SLOW REQUEST line per chat.
    start_server "${mock_env[@]}" HEALTH_AGENT__ACTORS__LLM__MAILBOX_CAPACITY=$((n + 1000)) \
      HEALTH_AGENT__ACTORS__DB__MAILBOX_CAPACITY=$((2 * n + 1000)) \
      HEALTH_AGENT__DATABASE__CONNECTION_TIMEOUT_MS=60000 HEALTH_AGENT__DATABASE__QUEUE_TIMEOUT_MS=60000 \
      SLOW_REQUEST_THRESHOLD_MS=600000
    $bin/chatload seed --url "http://127.0.0.1:$port" --users "$n" --user-prefix burst
    echo "run $r, server before: rss_mb=$(rss "$pid" VmRSS)"
    local b0; b0=$(busy_jiffies)
    out=$($bin/chatload burst --url "http://127.0.0.1:$port" --n "$n" --users "$n" \
      --user-prefix burst --latency-ms 1000)
    echo "$out"
    # Everything on the box (server, PostgreSQL, Redis, mock, load generator):
    # the CPU the chats cost, against the 2 cores x 1.1 s a p95 of 1.1 s allows.
    local cpu; cpu=$(( $(busy_jiffies) - b0 ))
    echo "RESULT e cpu: $(awk -v j="$cpu" -v n="$n" 'BEGIN {printf "%.2f CPU-s busy for the burst (incl. 1 s of connection set-up), %.2f ms a chat", j/100, j*10/n}')"
    echo "RESULT e rss: server VmRSS $(rss "$pid" VmRSS) MB, peak VmHWM $(rss "$pid" VmHWM) MB; the mock (actix-web holding the same slow requests, nothing else) peak VmHWM $(rss "$mock" VmHWM) MB"
    fails+=("$(sed -nE 's/.* failures=([0-9]+).*/\1/p' <<<"$out" | tail -1)")
    hwm+=("$(rss "$pid" VmHWM)")
    # What the server gives back once the burst is over (issue 16: <= 60 MB in 60 s).
    local after=() t=0
    for at in 5 30 60; do sleep $((at - t)); t=$at; after+=("${at} s $(rss "$pid" VmRSS) MB"); done
    at60+=("$(rss "$pid" VmRSS)")
    echo "RESULT e after: server VmRSS ${after[*]}"
    stop_server
  done
  # One run's 503 count swings from a few to thousands on a shared box
  # (RESULTS.md): the median of the runs is the figure to quote.
  echo "RESULT e median of $runs: 503s $(printf '%s\n' "${fails[@]}" | median) (runs: ${fails[*]}), peak VmHWM $(printf '%s\n' "${hwm[@]}" | median) MB, VmRSS 60 s after $(printf '%s\n' "${at60[@]}" | median) MB"
  stop "$mock"; mock=""
}

bench_h() {
  local rps=${CAP_H_RPS:-500} hsecs=${CAP_H_SECS:-20} hz pg redis out chats s0 p0 r0 s1 p1 r1
  hz=$(getconf CLK_TCK)
  echo "== h: CPU per chat by process, ${rps} chats/s for ${hsecs}s, mock at 100 ms (chatload rate)"
  start_mock 100
  start_server "${mock_env[@]}"
  # The postmaster is the checkpointer's parent; Redis says its own pid.
  pg=$(./dev psql -Atq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
  pg=$(awk '/^PPid:/ {print $2}' "/proc/$pg/status")
  redis=$(redis-cli -u "$REDIS_URL" info server | awk -F: '/^process_id:/ {print $2+0}')
  # Warm: the pools' connections and the statement caches are made.
  $bin/chatload rate --url "http://127.0.0.1:$port" --users "$users" --latency-ms 100 \
    --rps 100 --secs 3 >/dev/null
  s0=$(ticks "$pid") p0=$(pg_ticks "$pg") r0=$(ticks "$redis")
  out=$($bin/chatload rate --url "http://127.0.0.1:$port" --users "$users" --latency-ms 100 \
    --rps "$rps" --secs "$hsecs")
  s1=$(ticks "$pid") p1=$(pg_ticks "$pg") r1=$(ticks "$redis")
  echo "$out"
  chats=$(sed -E 's/.*chats=([0-9]+).*/\1/' <<<"$out")
  per() { awk -v t="$1" -v hz="$hz" -v n="$chats" 'BEGIN {printf "%.3f ms (%.2f CPU-s)", t * 1000 / hz / n, t / hz}'; }
  echo "RESULT h: CPU per chat over $chats chats: server $(per $((s1 - s0))), PostgreSQL $(per $((p1 - p0))), Redis $(per $((r1 - r0)))"
  stop_server
  stop "$mock"; mock=""
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -sr); $(date -u +%FT%TZ); $(git rev-parse --short HEAD 2>/dev/null)${CAP_BIN:+; binaries from $CAP_BIN}"
fresh_db
start_server
$bin/chatload seed --url "http://127.0.0.1:$port" --users "$users"
stop_server
for b in "${@:-g a b c f d e}"; do
  for x in $b; do
    case $x in
      a | b | c | d | e | f | g | h) "bench_$x" ;;
      *) echo "unknown benchmark $x (a-h)" >&2; exit 2 ;;
    esac
  done
done
