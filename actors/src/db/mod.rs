//! `DbActor`: owns the PostgreSQL pools and serves typed operations.
//!
//! One `DbActor` runs on each arbiter that needs the database (every HTTP
//! worker, the scheduler), all sharing one [`DbShared`]: the primary and
//! replica pools, one admission [`Gate`] and the health probe. A request never
//! leaves its worker thread, and the gate bounds the whole family.

mod client;
mod error;
mod handlers;
mod homes;
mod messages;
pub mod migrate;
pub mod ops;
mod probe;
mod queue;
mod replica;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix::{Actor, Context};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::NoTls;

pub use error::DbError;
pub use messages::{DbOperation, Run};
pub use probe::DbHealth;
pub use replica::{ReplicaHealth, ReplicaSnapshot};

use crate::family::Family;
use crate::gate::Gate;
use crate::trace;
use homes::Homes;
use queue::QueueEstimate;

pub use client::{Client, PgManager, Transaction};
pub type PgPool = bb8::Pool<PgManager>;

/// What the server's configuration tells the database actor.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: String,
    pub replica_url: Option<String>,
    pub pool_max_size: u32,
    pub pool_min_idle: u32,
    pub connection_timeout: Duration,
    /// How long an operation may wait for a pooled connection when every
    /// connection is busy before it is shed (503).
    pub queue_timeout: Duration,
    pub query_timeout: Duration,
    pub test_on_checkout: bool,
    pub mailbox_capacity: usize,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    /// Reads leave the replica while it is further behind the primary than this.
    pub replica_max_lag: Duration,
}

/// Everything the `DbActor` instances share.
#[derive(Debug)]
pub struct DbShared {
    /// Swapped whole by [`DbShared::resize_pools`]: bb8 cannot resize a pool.
    pools: RwLock<Pools>,
    recipe: PoolRecipe,
    gate: Gate,
    health: Arc<DbHealth>,
    replica_health: Option<Arc<ReplicaHealth>>,
    query_timeout: Duration,
    /// Milliseconds; live-tunable.
    queue_timeout_ms: AtomicU64,
    /// Set once the probe has seen the database: until then a request waits
    /// up to `connection_timeout` as before (the server may start first).
    seen_up: AtomicBool,
    /// Waiters and hold times per pool, to shed at arrival.
    primary_queue: QueueEstimate,
    replica_queue: QueueEstimate,
}

pub(crate) const DOWN: &str = "the database is down (health probe)";

/// How long one operation may wait for a connection, and what a miss means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checkout {
    /// Every connection is busy: a queue this long is overload.
    Queue(Duration),
    /// Every connection is busy and the expected wait is past half the
    /// queue target: waiting would likely end in a 503 too. Half, so that
    /// what is admitted is served in time and the budget's timeout stays a
    /// rare backstop: a 503 comes at once or not at all.
    Shed,
    /// The pool is still opening connections: a connect is not a queue.
    Connect(Duration),
    /// Health says the database is down: take an idle connection or fail.
    Down,
}

#[derive(Debug, Clone)]
struct Pools {
    primary: PgPool,
    replica: Option<PgPool>,
}

/// What a pool is built from besides its sizes. The parsed configs redact
/// the password in `Debug`, unlike the URL.
#[derive(Debug, Clone)]
struct PoolRecipe {
    primary: tokio_postgres::Config,
    replica: Option<tokio_postgres::Config>,
    connection_timeout: Duration,
    test_on_checkout: bool,
    /// Shared by every pool built from this recipe, resizes included.
    homes: Arc<Homes>,
}

impl PoolRecipe {
    fn build(&self, max_size: u32, min_idle: u32) -> Result<Pools, InvalidPoolSize> {
        // bb8 panics on these.
        if max_size == 0 || min_idle > max_size {
            return Err(InvalidPoolSize { max_size, min_idle });
        }
        Ok(Pools {
            primary: self.pool(&self.primary, max_size, min_idle),
            replica: self
                .replica
                .as_ref()
                .map(|pg| self.pool(pg, max_size, min_idle)),
        })
    }

    fn pool(&self, pg: &tokio_postgres::Config, max_size: u32, min_idle: u32) -> PgPool {
        let manager = PgManager::new(
            PostgresConnectionManager::new(pg.clone(), NoTls),
            Arc::clone(&self.homes),
        );
        bb8::Pool::builder()
            .max_size(max_size)
            .min_idle((min_idle > 0).then_some(min_idle))
            .connection_timeout(self.connection_timeout)
            // Checking out with a PING costs a round trip per query; broken
            // connections are caught by `has_broken` when they return instead.
            .test_on_check_out(self.test_on_checkout)
            .error_sink(Box::new(LogErrors))
            .build_unchecked(manager)
    }
}

/// Pool sizes bb8 cannot work with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pool_max_size must be at least 1 and pool_min_idle at most pool_max_size (got {max_size} and {min_idle})")]
pub struct InvalidPoolSize {
    pub max_size: u32,
    pub min_idle: u32,
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
        let recipe = PoolRecipe {
            primary: pg_config(&cfg.url, cfg)?,
            replica: match cfg.replica_url.as_deref() {
                Some(url) if !url.is_empty() => Some(pg_config(url, cfg)?),
                _ => None,
            },
            connection_timeout: cfg.connection_timeout,
            test_on_checkout: cfg.test_on_checkout,
            homes: Arc::default(),
        };
        let pools = recipe
            .build(cfg.pool_max_size, cfg.pool_min_idle)
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        let health = DbHealth::new(cfg.probe_interval, cfg.probe_timeout);
        probe::spawn(recipe.primary.clone(), Arc::clone(&health));
        let replica_health = recipe.replica.as_ref().map(|replica| {
            let h = ReplicaHealth::new(cfg.probe_interval, cfg.probe_timeout, cfg.replica_max_lag);
            replica::spawn(recipe.primary.clone(), replica.clone(), Arc::clone(&h));
            h
        });
        Ok(Arc::new(Self {
            pools: RwLock::new(pools),
            recipe,
            gate: Gate::new("db", cfg.mailbox_capacity),
            health,
            replica_health,
            query_timeout: cfg.query_timeout,
            queue_timeout_ms: AtomicU64::new(cfg.queue_timeout.as_millis() as u64),
            seen_up: AtomicBool::new(false),
            primary_queue: QueueEstimate::default(),
            replica_queue: QueueEstimate::default(),
        }))
    }

    /// Pools and a gate of their own over the same database and health
    /// probe, for background work (the reminder scheduler) that HTTP load
    /// must not be able to starve: `connections` connections, admitted
    /// through `gate`. Its operations wait up to
    /// `connection_timeout` for a connection, since nobody waits on them.
    pub fn reserved(&self, gate: Gate, connections: u32) -> Result<Arc<Self>, InvalidPoolSize> {
        let pools = self.recipe.build(connections, connections.min(1))?;
        Ok(Arc::new(Self {
            pools: RwLock::new(pools),
            recipe: self.recipe.clone(),
            gate,
            health: Arc::clone(&self.health),
            replica_health: self.replica_health.clone(),
            query_timeout: self.query_timeout,
            queue_timeout_ms: AtomicU64::new(self.recipe.connection_timeout.as_millis() as u64),
            seen_up: AtomicBool::new(false),
            primary_queue: QueueEstimate::default(),
            replica_queue: QueueEstimate::default(),
        }))
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms.load(Ordering::Relaxed))
    }

    /// Applied live by a configuration reload.
    pub fn set_queue_timeout(&self, timeout: Duration) {
        self.queue_timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    /// Whether the database is up as far as health knows; before its first
    /// answer it counts as up.
    fn database_up(&self) -> bool {
        if self.health.is_connected() {
            self.seen_up.store(true, Ordering::Relaxed);
            true
        } else {
            !self.seen_up.load(Ordering::Relaxed)
        }
    }

    /// How long patient work waits for a busy pool.
    pub(crate) fn patient_wait(&self) -> Duration {
        self.recipe.connection_timeout
    }

    /// The wait an operation on `pool` may spend getting a connection: what
    /// is left of the queue target since its request `arrived`, so that a
    /// 503 comes within the target as the client sees it. Patient work
    /// waits `connection_timeout` for a busy pool and is never shed, nor
    /// refused because health says the database is down.
    pub(crate) fn checkout(
        &self,
        pool: &PgPool,
        on_primary: bool,
        patient: bool,
        arrived: Option<Instant>,
    ) -> Checkout {
        if !patient && !self.database_up() {
            return Checkout::Down;
        }
        // Not "no idle connection": one seen idle here may be taken by the
        // time this operation asks, and a full pool is a queue either way.
        if !pool_full(pool) {
            return Checkout::Connect(self.recipe.connection_timeout);
        }
        if patient {
            return Checkout::Queue(self.patient_wait());
        }
        // At least half: an operation late in a long request (a chat's,
        // after its model call) still gets a fair wait.
        let target = self.queue_timeout();
        let budget = target
            .saturating_sub(arrived.map_or(Duration::ZERO, |a| a.elapsed()))
            .max(target / 2);
        if self.past_half_the_target(pool, self.queue(on_primary)) {
            Checkout::Shed
        } else {
            Checkout::Queue(budget)
        }
    }

    /// Whether a write arriving now would be shed: for the HTTP layer, to
    /// refuse it before authentication, rate limits and body parsing spend
    /// CPU that the served requests need.
    pub fn sheds_writes(&self) -> bool {
        let primary = self.primary_pool();
        self.database_up()
            && pool_full(&primary)
            && self.past_half_the_target(&primary, &self.primary_queue)
    }

    /// The one threshold for shedding on arrival, at the door and in the
    /// actor alike, so that both refuse exactly when the other would. An
    /// idle connection means no queue, whatever the count of operations
    /// that are about to take one.
    fn past_half_the_target(&self, pool: &PgPool, queue: &QueueEstimate) -> bool {
        pool.state().idle_connections == 0
            && queue.expected_wait(pool.config().max_size) > self.queue_timeout() / 2
    }

    pub(crate) fn queue(&self, on_primary: bool) -> &QueueEstimate {
        if on_primary {
            &self.primary_queue
        } else {
            &self.replica_queue
        }
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    pub fn health(&self) -> &Arc<DbHealth> {
        &self.health
    }

    pub fn pool_stats(&self) -> PoolStats {
        let primary = self.primary_pool();
        let state = primary.state();
        let config = primary.config();
        PoolStats {
            size: state.connections,
            idle: state.idle_connections,
            max_size: config.max_size,
            min_idle: config.min_idle.unwrap_or(0),
        }
    }

    /// The current primary pool, for benchmarks and tools that measure the
    /// actor's cost. A clone: it stays usable after a resize.
    pub fn primary_pool(&self) -> PgPool {
        self.pools().primary
    }

    /// The replica's state, when one is configured.
    pub fn replica_health(&self) -> Option<&Arc<ReplicaHealth>> {
        self.replica_health.as_ref()
    }

    /// The pool an operation runs on, and whether it is the primary's: reads
    /// go to the replica while it is up and close enough behind, otherwise
    /// (counted) to the primary.
    pub(crate) fn pool_for(&self, read_only: bool) -> (PgPool, bool) {
        let pools = self.pools();
        match (pools.replica, read_only, &self.replica_health) {
            (Some(replica), true, Some(h)) => {
                if h.usable() {
                    if h.take_stale_pool() {
                        return (self.fresh_replica_pool(), false);
                    }
                    (replica, false)
                } else {
                    h.count_fallback_read();
                    (pools.primary, true)
                }
            }
            _ => (pools.primary, true),
        }
    }

    /// A new replica pool in place of one whose connections died with the
    /// replica (each would fail one read before bb8 dropped it).
    fn fresh_replica_pool(&self) -> PgPool {
        let mut pools = self.pools.write().unwrap_or_else(PoisonError::into_inner);
        let (max, min) = {
            let c = pools.primary.config();
            (c.max_size, c.min_idle.unwrap_or(0))
        };
        let fresh = self
            .recipe
            .replica
            .as_ref()
            .map(|pg| self.recipe.pool(pg, max, min));
        if let Some(fresh) = fresh {
            tracing::info!("replica back: its pool is rebuilt");
            pools.replica = Some(fresh.clone());
            fresh
        } else {
            pools.primary.clone()
        }
    }

    fn pools(&self) -> Pools {
        // Nothing panics while holding the lock, and a `Pools` is valid whole.
        self.pools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the primary and replica pools with new ones of these sizes.
    /// Operations in flight keep the old pool's clone and finish on it; the
    /// old pool closes its connections when its last clone is dropped.
    /// The current arbiter (an HTTP worker) drives its share of the pools'
    /// connections from now on (`homes`).
    pub fn drive_connections_here(&self) {
        self.recipe.homes.add_here();
    }

    pub fn resize_pools(&self, max_size: u32, min_idle: u32) -> Result<(), InvalidPoolSize> {
        let fresh = self.recipe.build(max_size, min_idle)?;
        let old = std::mem::replace(
            &mut *self.pools.write().unwrap_or_else(PoisonError::into_inner),
            fresh,
        );
        tracing::info!(
            old_max_size = old.primary.config().max_size,
            max_size,
            min_idle,
            "database pools replaced"
        );
        Ok(())
    }
}

fn pool_full(pool: &PgPool) -> bool {
    pool.state().connections >= pool.config().max_size
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

#[derive(Debug, Clone, Copy)]
struct LogErrors;

impl bb8::ErrorSink<tokio_postgres::Error> for LogErrors {
    fn sink(&self, e: tokio_postgres::Error) {
        metrics::counter!("health_agent_db_connection_errors_total").increment(1);
        crate::lograte::DB_CONNECT.warn(e);
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

crate::restarts_on_panic!(DbActor, "db");

/// The cloneable face the HTTP layer and other actors use.
#[derive(Clone)]
pub struct DbHandle {
    family: Family<DbActor>,
    shared: Arc<DbShared>,
    primary_only: bool,
    patient: bool,
}

impl DbHandle {
    /// Starts a supervised `DbActor` on the current arbiter.
    pub fn start(shared: Arc<DbShared>) -> Self {
        let for_actor = Arc::clone(&shared);
        let family = Family::start("db", move |_| DbActor {
            shared: Arc::clone(&for_actor),
        });
        Self {
            family,
            shared,
            primary_only: false,
            patient: false,
        }
    }

    /// The same actor, but every operation (reads too) runs on the primary:
    /// for reloads after a write, which must see it whatever the replica's lag.
    pub fn primary(&self) -> Self {
        Self {
            primary_only: true,
            ..self.clone()
        }
    }

    /// The same actor, for work already paid for (a chat's save after its
    /// model calls): when every connection is busy it waits up to
    /// `connection_timeout` instead of the queue target, since shedding it
    /// would throw away the completions; for the same reason it is not
    /// refused while health reports the database down (a real outage fails
    /// it after `connection_timeout`). Such work is bounded by the LLM
    /// family's capacity, so it cannot fill the queue by itself.
    pub fn patient(&self) -> Self {
        Self {
            patient: true,
            ..self.clone()
        }
    }

    pub fn shared(&self) -> &Arc<DbShared> {
        &self.shared
    }

    /// Runs `op` through the actor: fails fast with `Overloaded` when the gate
    /// is full, and records the mailbox and service time in the request trace.
    pub async fn run<O: DbOperation>(&self, op: O) -> Result<O::Output, DbError> {
        let ticket = self.shared.gate.admit()?;
        // No wait for a pool that cannot connect: health knows within a second.
        // Patient work waits anyway: a probe starved by a saturated box looks
        // like an outage, and failing fast would throw the paid work away.
        if !self.patient
            && !self.shared.database_up()
            && self
                .shared
                .pool_for(O::READ_ONLY && !self.primary_only)
                .0
                .state()
                .idle_connections
                == 0
        {
            return Err(DbError::Unavailable(DOWN.into()));
        }
        let run = Run {
            op,
            ticket,
            primary: self.primary_only,
            patient: self.patient,
            arrived: trace::arrived(),
        };
        self.family.send(O::NAME, run).await
    }
}
