#!/usr/bin/env bash
# Per-user long-term memory search at scale: exact per-user top-k (B-tree on
# user_id, then exact cosine distance) vs. an HNSW index over the whole table.
#
#   loadtest/memory_search.sh [USERS] [MEMORIES_PER_USER]     (default 1000 1000)
#
# Loads USERS × MEMORIES_PER_USER random 384-d memories into a scratch
# database `ha_memsearch`, then runs pgbench with the exact query the chat
# uses, for random users, and reports TPS and latency; with HNSW=1 it then
# builds HNSW (m=16, ef_construction=64) and measures again, counting how often the
# HNSW plan returns fewer than k rows for a user (post-filtering).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
users=${1:-1000}; per=${2:-1000}; k=5; secs=${BENCH_SECS:-15}
./dev stack >/dev/null
psql() { ./dev psql -X -q "$@"; }
pgbin=$(dirname "$(readlink -f .data/pg/install/pgserver/pginstall/bin/psql 2>/dev/null || echo /nonexistent)")
pgbench=${PGBENCH:-$pgbin/pgbench}
eval "$(./dev env)"
url=${DATABASE_URL%/*}/ha_memsearch

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; $users users x $per memories, k=$k"
psql -c 'DROP DATABASE IF EXISTS ha_memsearch' -c 'CREATE DATABASE ha_memsearch'
DATABASE_URL=$url cargo run --quiet --release --bin health-agent -- migrate up >/dev/null
start=$(date +%s)
# One statement per user batch keeps memory flat; vectors are random unit-ish.
# Separate -c's: VACUUM cannot run in the one transaction a multi-statement -c is.
psql -d ha_memsearch \
  -c "INSERT INTO users (user_id) SELECT 'm' || u FROM generate_series(1, $users) u" \
  -c "INSERT INTO memories (user_id, kind, content, embedding)
      SELECT 'm' || u, 'fact', 'fact ' || u || '-' || i,
             (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) d WHERE i > 0)::vector
        FROM generate_series(1, $users) u, generate_series(1, $per) i" \
  -c "VACUUM ANALYZE memories" >/dev/null
echo "loaded $((users * per)) rows in $(( $(date +%s) - start )) s; table $(psql -d ha_memsearch -Atc "SELECT pg_size_pretty(pg_total_relation_size('memories'))")"

# The chat's query, for a random user and a random query vector.
cat > /tmp/memsearch.sql <<SQL
\set u random(1, $users)
SELECT content FROM memories WHERE user_id = 'm' || :u
 ORDER BY embedding <=> (SELECT embedding FROM memories WHERE user_id = 'm' || (:u % $users + 1) LIMIT 1)
 LIMIT $k;
SQL
run() {
  PGPASSWORD=health_agent "$pgbench" -n -h 127.0.0.1 -p "${HA_PG_PORT:-5439}" -U health_agent \
    -c 8 -j 2 -T "$secs" -M prepared -f /tmp/memsearch.sql ha_memsearch 2>/dev/null \
    | grep -E '^(tps|latency average)'
}
echo "exact per-user (btree on user_id + exact sort):"; run
psql -d ha_memsearch -c "EXPLAIN SELECT content FROM memories WHERE user_id = 'm1' ORDER BY embedding <=> (SELECT embedding FROM memories LIMIT 1) LIMIT $k" | sed 's/^/    /' | head -8

if [[ ${HNSW:-0} != 1 ]]; then
  echo "(HNSW comparison skipped; HNSW=1 builds it: slow on 2 cores at this size)"
  psql -c 'DROP DATABASE IF EXISTS ha_memsearch' >/dev/null
  exit 0
fi
start=$(date +%s)
psql -d ha_memsearch -c "SET maintenance_work_mem = '1GB'; CREATE INDEX memories_hnsw ON memories USING hnsw (embedding vector_cosine_ops)" >/dev/null
echo "HNSW built in $(( $(date +%s) - start )) s"
echo "with HNSW available (planner's choice):"; run
short=$(psql -d ha_memsearch -Atc "
  SET enable_indexscan = on; SET hnsw.ef_search = 40;
  SELECT count(*) FROM generate_series(1, 50) u
   WHERE (SELECT count(*) FROM (SELECT 1 FROM memories WHERE user_id = 'm' || u
          ORDER BY embedding <=> (SELECT embedding FROM memories LIMIT 1) LIMIT $k) t) < $k")
echo "users (of 50) for whom the plan returned fewer than $k rows: $short"
psql -c 'DROP DATABASE IF EXISTS ha_memsearch' >/dev/null
