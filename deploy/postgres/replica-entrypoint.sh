#!/bin/sh
# The streaming replica (docker-compose.prod.yml `db-replica`), run as the
# postgres user. On first start its data directory is empty: copy the
# primary with pg_basebackup (-R writes primary_conninfo and standby.signal),
# then run as a hot standby. Later starts resume streaming from where the
# replica stopped; if it fell further behind than the primary's
# wal_keep_size, empty its volume to take a fresh copy.
set -eu
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
export PGPASSWORD="$REPLICATION_PASSWORD"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h "${PRIMARY_HOST:-db}" -p "${PRIMARY_PORT:-5432}"; do
    echo "replica: waiting for the primary"
    sleep 2
  done
  rm -rf "${PGDATA:?}"/*
  pg_basebackup -h "${PRIMARY_HOST:-db}" -p "${PRIMARY_PORT:-5432}" -U "${REPLICATION_USER:-replicator}" \
    -D "$PGDATA" -R -X stream --checkpoint=fast --progress
  chmod 700 "$PGDATA"
fi
# Extra arguments go to postgres (e.g. -c port=…).
exec postgres -c hot_standby=on -c hot_standby_feedback=on "$@"
