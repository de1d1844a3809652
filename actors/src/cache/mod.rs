//! `CacheActor`: owns the Redis pool. Cache failures are counted, never
//! raised: a request whose cache call fails is served from the database.

mod handlers;
mod messages;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context, Supervised, Supervisor};
use bb8_redis::RedisConnectionManager;

pub use messages::{Delete, Get, Set};

use crate::error::ActorError;
use crate::gate::{Gate, Ticket, Timing};
use crate::trace;

pub type RedisPool = bb8::Pool<RedisConnectionManager>;

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub enabled: bool,
    pub url: String,
    pub namespace: String,
    pub pool_max_size: u32,
    pub op_timeout: Duration,
    pub mailbox_capacity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Actor(#[from] ActorError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: no connection in time")]
    Pool,
    #[error("redis operation timed out")]
    Timeout,
}

impl From<bb8::RunError<redis::RedisError>> for CacheError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        match e {
            bb8::RunError::User(e) => CacheError::Redis(e),
            bb8::RunError::TimedOut => CacheError::Pool,
        }
    }
}

/// Hit/miss/error counters, read by the metrics actor.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub sets: AtomicU64,
    pub deletes: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CacheSnapshot {
    pub enabled: bool,
    pub hits: u64,
    pub misses: u64,
    pub sets: u64,
    pub deletes: u64,
    pub errors: u64,
    pub total_reads: u64,
    pub hit_rate_percent: f64,
}

#[derive(Debug)]
pub struct CacheShared {
    pool: Option<RedisPool>,
    gate: Gate,
    namespace: String,
    op_timeout: Duration,
    stats: CacheStats,
    connected: AtomicBool,
}

impl CacheShared {
    pub fn start(cfg: &CacheConfig) -> Result<Arc<Self>, CacheError> {
        let pool = if cfg.enabled {
            let manager = RedisConnectionManager::new(cfg.url.as_str())?;
            Some(
                bb8::Pool::builder()
                    .max_size(cfg.pool_max_size)
                    .connection_timeout(cfg.op_timeout.max(Duration::from_millis(50)))
                    // A PING per checkout costs ~40 % of a GET (see PITFALLS §10).
                    .test_on_check_out(false)
                    .build_unchecked(manager),
            )
        } else {
            None
        };
        let shared = Arc::new(Self {
            pool,
            gate: Gate::new("cache", cfg.mailbox_capacity),
            namespace: format!("{}:v1:", cfg.namespace),
            op_timeout: cfg.op_timeout,
            stats: CacheStats::default(),
            connected: AtomicBool::new(false),
        });
        if shared.enabled() {
            spawn_probe(Arc::downgrade(&shared));
        }
        Ok(shared)
    }

    pub fn enabled(&self) -> bool {
        self.pool.is_some()
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Whether the last Redis call succeeded.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }

    pub fn snapshot(&self) -> CacheSnapshot {
        let s = &self.stats;
        let hits = s.hits.load(Ordering::Relaxed);
        let misses = s.misses.load(Ordering::Relaxed);
        let total = hits + misses;
        CacheSnapshot {
            enabled: self.enabled(),
            hits,
            misses,
            sets: s.sets.load(Ordering::Relaxed),
            deletes: s.deletes.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            total_reads: total,
            hit_rate_percent: if total == 0 {
                0.0
            } else {
                (hits as f64 * 10_000.0 / total as f64).round() / 100.0
            },
        }
    }

    fn note<T>(&self, r: &Result<T, CacheError>) {
        match r {
            Ok(_) => self.connected.store(true, Ordering::Relaxed),
            Err(CacheError::Actor(_)) => {}
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.connected.store(false, Ordering::Relaxed);
                tracing::debug!(error = %e, "cache call failed");
            }
        }
    }
}

/// PINGs Redis every second so health reports the cache's state even when no
/// request has used it lately; stops when the cache is dropped.
fn spawn_probe(shared: std::sync::Weak<CacheShared>) {
    actix::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(s) = shared.upgrade() else { return };
            let Some(pool) = s.pool.clone() else { return };
            let ping = async {
                let mut conn = pool.get().await.ok()?.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .ok()
            };
            let ok = tokio::time::timeout(s.op_timeout.max(Duration::from_millis(250)), ping)
                .await
                .ok()
                .flatten()
                .is_some();
            s.connected.store(ok, Ordering::Relaxed);
        }
    });
}

pub struct CacheActor {
    shared: Arc<CacheShared>,
}

impl Actor for CacheActor {
    type Context = Context<Self>;
}

impl Supervised for CacheActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!("cache actor restarting");
        self.shared.gate.stats().record_restart();
    }
}

/// The cloneable face of the cache. Every method degrades to "miss" or
/// "not stored" when Redis is disabled, down or slow.
#[derive(Clone)]
pub struct CacheHandle {
    addr: Addr<CacheActor>,
    shared: Arc<CacheShared>,
}

impl CacheHandle {
    pub fn start(shared: Arc<CacheShared>) -> Self {
        let for_actor = Arc::clone(&shared);
        let addr = Supervisor::start(move |_| CacheActor { shared: for_actor });
        Self { addr, shared }
    }

    pub fn shared(&self) -> &Arc<CacheShared> {
        &self.shared
    }

    async fn call<M, T>(
        &self,
        operation: &'static str,
        msg: impl FnOnce(Ticket) -> M,
    ) -> Result<T, CacheError>
    where
        M: actix::Message<Result = (Result<T, CacheError>, Timing)> + Send + 'static,
        T: Send + 'static,
        CacheActor: actix::Handler<M>,
    {
        let ticket = self.shared.gate.admit()?;
        let (out, timing) = self
            .addr
            .send(msg(ticket))
            .await
            .map_err(|e| ActorError::from_mailbox("cache", e))?;
        trace::record("cache", operation, timing);
        self.shared.note(&out);
        out
    }

    /// The raw bytes under `key`, or `None` on a miss or any failure.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        if !self.shared.enabled() {
            return None;
        }
        let key = self.shared.key(key);
        let found = self
            .call("get", |ticket| Get { key, ticket })
            .await
            .ok()
            .flatten();
        let counter = if found.is_some() {
            &self.shared.stats.hits
        } else {
            &self.shared.stats.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores `value` under `key` for `ttl`; returns whether it was stored.
    pub async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> bool {
        if !self.shared.enabled() {
            return false;
        }
        let key = self.shared.key(key);
        let r = self
            .call("set", |ticket| Set {
                key,
                value,
                ttl,
                ticket,
            })
            .await;
        if r.is_ok() {
            self.shared.stats.sets.fetch_add(1, Ordering::Relaxed);
        }
        r.is_ok()
    }

    /// Removes keys; returns whether Redis confirmed it.
    pub async fn delete(&self, keys: &[&str]) -> bool {
        if !self.shared.enabled() || keys.is_empty() {
            return !self.shared.enabled();
        }
        let keys: Vec<String> = keys.iter().map(|k| self.shared.key(k)).collect();
        let r = self.call("delete", |ticket| Delete { keys, ticket }).await;
        if r.is_ok() {
            self.shared.stats.deletes.fetch_add(1, Ordering::Relaxed);
        }
        r.is_ok()
    }
}
