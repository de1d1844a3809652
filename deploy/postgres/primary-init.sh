#!/bin/sh
# Runs once, when the primary's data directory is first initialised (the
# postgres image runs /docker-entrypoint-initdb.d/*.sh as the postgres user):
# a role the streaming replica connects as, and a pg_hba line that lets it.
# The image's own pg_hba.conf allows "all" databases, which does not cover
# replication connections.
set -eu
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD (docker-compose.prod.yml passes it)}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=pw="$REPLICATION_PASSWORD" --set=role="${REPLICATION_USER:-replicator}" <<'SQL'
CREATE ROLE :"role" WITH REPLICATION LOGIN PASSWORD :'pw';
SQL
echo "host replication ${REPLICATION_USER:-replicator} all scram-sha-256" >>"$PGDATA/pg_hba.conf"
