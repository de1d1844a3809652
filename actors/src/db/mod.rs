//! `DbActor`: owns the PostgreSQL pools and serves typed operations.
//!
//! One `DbActor` runs on each arbiter that needs the database (every HTTP
//! worker, the scheduler), all sharing one [`DbShared`]: the primary and
//! replica pools, one admission [`Gate`] and the health probe. A request never
//! leaves its worker thread, and the gate bounds the whole family.

mod error;
mod handlers;
mod messages;
pub mod migrate;
pub mod ops;
mod probe;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context, Supervised, Supervisor};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::NoTls;

pub use error::DbError;
pub use messages::{DbOperation, Run};
pub use probe::DbHealth;

use crate::gate::{Gate, Timing};
use crate::trace;

pub type PgPool = bb8::Pool<PostgresConnectionManager<NoTls>>;
pub use tokio_postgres::Client;

/// What the server's configuration tells the database actor.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: String,
    pub replica_url: Option<String>,
    pub pool_max_size: u32,
    pub pool_min_idle: u32,
    pub connection_timeout: Duration,
    pub query_timeout: Duration,
    pub test_on_checkout: bool,
    pub mailbox_capacity: usize,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
}

/// Everything the `DbActor` instances share.
#[derive(Debug)]
pub struct DbShared {
    primary: PgPool,
    replica: Option<PgPool>,
    gate: Gate,
    health: Arc<DbHealth>,
    query_timeout: Duration,
}

/// Pool figures for metrics and the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max_size: u32,
    pub min_idle: u32,
}

impl DbShared {
    /// Builds the pools lazily (the server starts while the database is down
    /// and reports itself degraded) and starts the health probe on the current
    /// arbiter.
    pub fn start(cfg: &DbConfig) -> Result<Arc<Self>, DbError> {
        let primary = build_pool(&cfg.url, cfg)?;
        let replica = match cfg.replica_url.as_deref() {
            Some(url) if !url.is_empty() => Some(build_pool(url, cfg)?),
            _ => None,
        };
        let health = DbHealth::new(cfg.probe_interval, cfg.probe_timeout);
        probe::spawn(pg_config(&cfg.url, cfg)?, Arc::clone(&health));
        Ok(Arc::new(Self {
            primary,
            replica,
            gate: Gate::new("db", cfg.mailbox_capacity),
            health,
            query_timeout: cfg.query_timeout,
        }))
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    pub fn health(&self) -> &Arc<DbHealth> {
        &self.health
    }

    pub fn pool_stats(&self) -> PoolStats {
        let state = self.primary.state();
        let config = self.primary.config();
        PoolStats {
            size: state.connections,
            idle: state.idle_connections,
            max_size: config.max_size,
            min_idle: config.min_idle.unwrap_or(0),
        }
    }

    /// The primary pool, for benchmarks and tools that measure the actor's cost.
    pub fn primary_pool(&self) -> &PgPool {
        &self.primary
    }
}

fn pg_config(url: &str, cfg: &DbConfig) -> Result<tokio_postgres::Config, DbError> {
    let mut pg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| DbError::Unavailable(format!("invalid database url: {e}")))?;
    pg.connect_timeout(cfg.connection_timeout)
        .keepalives_idle(Duration::from_secs(30));
    if pg.get_application_name().is_none() {
        pg.application_name("health-agent");
    }
    Ok(pg)
}

fn build_pool(url: &str, cfg: &DbConfig) -> Result<PgPool, DbError> {
    let manager = PostgresConnectionManager::new(pg_config(url, cfg)?, NoTls);
    Ok(bb8::Pool::builder()
        .max_size(cfg.pool_max_size)
        .min_idle((cfg.pool_min_idle > 0).then_some(cfg.pool_min_idle))
        .connection_timeout(cfg.connection_timeout)
        // Checking out with a PING costs a round trip per query; broken
        // connections are caught by `has_broken` when they return instead.
        .test_on_check_out(cfg.test_on_checkout)
        .error_sink(Box::new(LogErrors))
        .build_unchecked(manager))
}

#[derive(Debug, Clone, Copy)]
struct LogErrors;

impl bb8::ErrorSink<tokio_postgres::Error> for LogErrors {
    fn sink(&self, e: tokio_postgres::Error) {
        metrics::counter!("health_agent_db_connection_errors_total").increment(1);
        tracing::warn!(error = %e, "database connection failed");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<tokio_postgres::Error>> {
        Box::new(*self)
    }
}

/// The actor. It holds no state of its own besides the shared pools, so a
/// restart only needs to count itself.
pub struct DbActor {
    shared: Arc<DbShared>,
}

impl Actor for DbActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The gate is the real bound; this only keeps actix from parking senders first.
        ctx.set_mailbox_capacity(self.shared.gate.stats().snapshot().mailbox_capacity.max(16));
    }
}

impl Supervised for DbActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!("db actor restarting");
        self.shared.gate.stats().record_restart();
    }
}

/// The cloneable face the HTTP layer and other actors use.
#[derive(Clone)]
pub struct DbHandle {
    addr: Addr<DbActor>,
    shared: Arc<DbShared>,
}

impl DbHandle {
    /// Starts a supervised `DbActor` on the current arbiter.
    pub fn start(shared: Arc<DbShared>) -> Self {
        let for_actor = Arc::clone(&shared);
        let addr = Supervisor::start(move |_| DbActor { shared: for_actor });
        Self { addr, shared }
    }

    pub fn shared(&self) -> &Arc<DbShared> {
        &self.shared
    }

    /// Runs `op` through the actor: fails fast with `Overloaded` when the gate
    /// is full, and records the mailbox and service time in the request trace.
    pub async fn run<O: DbOperation>(&self, op: O) -> Result<O::Output, DbError> {
        let ticket = self.shared.gate.admit()?;
        let (out, timing): (Result<O::Output, DbError>, Timing) = self
            .addr
            .send(Run { op, ticket })
            .await
            .map_err(|e| crate::error::ActorError::from_mailbox("db", e))?;
        trace::record("db", O::NAME, timing);
        out
    }
}
