//! The cache: a bounded in-process L1 (moka) in front of Redis (L2), which
//! the `CacheActor` owns through a bb8-redis pool.
//!
//! Cache trouble is counted, never raised: Redis that is down, slow (tight
//! timeouts) or failing (circuit breaker) turns reads into database loads.
//! Invalidations that could not reach Redis are queued and replayed before
//! Redis is read again, so an outage never leaves a stale entry to be served
//! when it ends. Other instances drop their L1 copies through Redis pub/sub.

mod handlers;
mod manager;
mod messages;
mod pubsub;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, Context};
use bb8_redis::RedisConnectionManager;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use messages::{
    Announce, Delete, Get, RateDecision, RateLimit, Recheck, Replace, Set, SetWhen,
};

use crate::circuit::Circuit;
use crate::error::ActorError;
use crate::family::Family;
use crate::gate::{Gate, Ticket, Timing};
use manager::TrackedManager;

pub type RedisPool = bb8::Pool<TrackedManager>;

/// What `get_or_load` needs of its loader's error: concurrent misses on one
/// key share a single load, so each waiter gets its own copy of a failure;
/// and a value that does not encode fails like its load.
pub trait LoadError: Send + Sync + 'static {
    fn duplicate(&self) -> Self;
    fn not_encodable(e: serde_json::Error) -> Self;
}

/// A rate-limit call that gave no decision. Whether Redis ran it anyway is
/// known at once when the call never reached Redis, else when the late
/// script ends.
#[derive(Debug)]
pub struct Undecided {
    pub error: CacheError,
    settled: tokio::sync::oneshot::Receiver<bool>,
}

impl Undecided {
    /// `Some(ran)` when already known.
    pub fn ran_now(&mut self) -> Option<bool> {
        use tokio::sync::oneshot::error::TryRecvError;
        match self.settled.try_recv() {
            Ok(ran) => Some(ran),
            Err(TryRecvError::Closed) => Some(false),
            Err(TryRecvError::Empty) => None,
        }
    }

    /// Whether Redis ran the call (and so charged its request and debt).
    pub async fn ran(self) -> bool {
        self.settled.await.unwrap_or(false)
    }
}
type L1 = moka::future::Cache<String, Arc<[u8]>>;

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub enabled: bool,
    pub url: String,
    pub namespace: String,
    pub pool_max_size: u32,
    pub op_timeout: Duration,
    pub mailbox_capacity: usize,
    pub l1_ttl: Duration,
    pub l1_max_entries: u64,
    /// Consecutive Redis failures that open the circuit, and for how long.
    pub circuit_failures: u32,
    pub circuit_open: Duration,
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
    #[error("redis skipped: circuit open")]
    CircuitOpen,
    #[error("cache disabled")]
    Disabled,
}

impl From<bb8::RunError<redis::RedisError>> for CacheError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        match e {
            bb8::RunError::User(e) => CacheError::Redis(e),
            bb8::RunError::TimedOut => CacheError::Pool,
        }
    }
}

#[derive(Debug, Default)]
struct CacheStats {
    hits: AtomicU64,
    l1_hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    errors: AtomicU64,
}

/// Cache counters since start (L1 and Redis).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CacheFigures))]
pub struct CacheSnapshot {
    pub enabled: bool,
    pub hits: u64,
    pub l1_hits: u64,
    pub misses: u64,
    pub sets: u64,
    pub deletes: u64,
    pub errors: u64,
    pub total_reads: u64,
    pub hit_rate_percent: f64,
    /// Invalidations Redis has not confirmed yet (replayed when it is back).
    pub pending_invalidations: u64,
    pub circuit_open: bool,
}

pub struct CacheShared {
    /// The start-up thread's pool (the probe, replays); each `CacheActor`
    /// builds its own from `redis`.
    pool: Option<RedisPool>,
    redis: Option<RedisRecipe>,
    l1: Option<L1>,
    gate: Gate,
    prefix: String,
    channel: String,
    op_timeout: Duration,
    stats: CacheStats,
    connected: AtomicBool,
    circuit: Circuit,
    /// Invalidations Redis has not confirmed yet (full keys).
    pending: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for CacheShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheShared")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl CacheShared {
    /// Builds the pool lazily (the server starts while Redis is down) and,
    /// when enabled, starts the probe and the invalidation listener on the
    /// current arbiter.
    pub fn start(cfg: &CacheConfig) -> Result<Arc<Self>, CacheError> {
        let (redis, l1) = if cfg.enabled {
            let recipe = RedisRecipe {
                manager: TrackedManager(RedisConnectionManager::new(cfg.url.as_str())?),
                max_size: cfg.pool_max_size,
                connection_timeout: cfg.op_timeout.max(Duration::from_millis(50)),
            };
            let l1 = moka::future::Cache::builder()
                .max_capacity(cfg.l1_max_entries)
                .time_to_live(cfg.l1_ttl)
                .build();
            (Some(recipe), Some(l1))
        } else {
            (None, None)
        };
        let pool = redis.as_ref().map(RedisRecipe::pool);
        let prefix = format!("{}:v1:", cfg.namespace);
        let shared = Arc::new(Self {
            pool,
            redis,
            l1,
            gate: Gate::new("cache", cfg.mailbox_capacity),
            channel: format!("{prefix}invalidate"),
            prefix,
            op_timeout: cfg.op_timeout,
            stats: CacheStats::default(),
            connected: AtomicBool::new(false),
            circuit: Circuit::new(cfg.circuit_failures, cfg.circuit_open),
            pending: Mutex::new(HashSet::new()),
        });
        if shared.enabled() {
            spawn_probe(Arc::downgrade(&shared));
            pubsub::spawn_listener(cfg.url.clone(), Arc::downgrade(&shared));
        }
        Ok(shared)
    }

    pub fn enabled(&self) -> bool {
        self.pool.is_some()
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Whether Redis answered the last probe or call.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn snapshot(&self) -> CacheSnapshot {
        let s = &self.stats;
        let hits = s.hits.load(Ordering::Relaxed);
        let misses = s.misses.load(Ordering::Relaxed);
        let total = hits + misses;
        CacheSnapshot {
            enabled: self.enabled(),
            hits,
            l1_hits: s.l1_hits.load(Ordering::Relaxed),
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
            pending_invalidations: self.pending.lock().map(|p| p.len() as u64).unwrap_or(0),
            circuit_open: self.circuit.is_open(),
        }
    }

    fn note<T>(&self, r: &Result<T, CacheError>) {
        match r {
            Ok(_) => {
                self.circuit.success();
                self.connected.store(true, Ordering::Relaxed);
            }
            Err(CacheError::Actor(_) | CacheError::CircuitOpen | CacheError::Disabled) => {}
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.circuit.failure();
                self.connected.store(false, Ordering::Relaxed);
                tracing::debug!(error = %e, "cache call failed");
            }
        }
    }

    /// Drops local copies of full keys (own writes and other instances' news).
    async fn evict_local(&self, full_keys: &[String]) {
        if let Some(l1) = &self.l1 {
            for k in full_keys {
                l1.invalidate(k).await;
            }
        }
    }

    fn pending_keys(&self) -> Vec<String> {
        self.pending
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn queue_pending(&self, keys: Vec<String>) {
        if let Ok(mut p) = self.pending.lock() {
            p.extend(keys);
        }
    }

    fn clear_pending(&self, done: &[String]) {
        if let Ok(mut p) = self.pending.lock() {
            for k in done {
                p.remove(k);
            }
        }
    }
}

/// PINGs Redis every second so health reports the cache's state even when
/// idle, closes the circuit when Redis is back, and replays queued
/// invalidations. Ends when the cache is dropped.
fn spawn_probe(shared: std::sync::Weak<CacheShared>) {
    actix::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(s) = shared.upgrade() else { return };
            let Some(pool) = s.pool.clone() else { return };
            let ping = || async {
                let c = pool.get().await.ok()?.clone();
                let mut conn = c.conn.clone();
                match redis::cmd("PING").query_async::<String>(&mut conn).await {
                    Ok(_) => Some(true),
                    Err(e) => {
                        c.note_error(&e);
                        Some(false)
                    }
                }
            };
            // After a cut every pooled connection is dead, and each fails
            // fast once: go through them now rather than one per tick. A
            // timeout (a stalled Redis) ends the round.
            let mut ok = false;
            for _ in 0..=pool.state().connections {
                let deadline = s.op_timeout.max(Duration::from_millis(250));
                match tokio::time::timeout(deadline, ping()).await {
                    Ok(Some(true)) => {
                        ok = true;
                        break;
                    }
                    Ok(Some(false)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
            s.connected.store(ok, Ordering::Relaxed);
            if ok {
                s.circuit.success();
                let keys = s.pending_keys();
                if !keys.is_empty() && replay(&pool, &s, &keys).await {
                    s.clear_pending(&keys);
                    tracing::info!(keys = keys.len(), "replayed queued cache invalidations");
                }
            }
        }
    });
}

/// DEL + PUBLISH straight on a pooled connection (probe path, no actor).
async fn replay(pool: &RedisPool, s: &CacheShared, keys: &[String]) -> bool {
    let Ok(c) = pool.get().await else {
        return false;
    };
    let c = c.clone();
    let mut conn = c.conn.clone();
    let mut pipe = redis::pipe();
    pipe.del(keys)
        .ignore()
        .publish(&s.channel, keys.join("\n"))
        .ignore();
    match tokio::time::timeout(s.op_timeout * 4, pipe.query_async::<()>(&mut conn)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            c.note_error(&e);
            false
        }
        Err(_) => false,
    }
}

/// What a Redis pool is built from.
struct RedisRecipe {
    manager: TrackedManager,
    max_size: u32,
    connection_timeout: Duration,
}

impl RedisRecipe {
    /// A pool whose connections are opened, and so driven, on the thread
    /// that uses it: redis drives a multiplexed connection from a task on
    /// the thread that opened it, and a pool shared by the workers made
    /// each call cross threads twice.
    fn pool(&self) -> RedisPool {
        bb8::Pool::builder()
            .max_size(self.max_size)
            .connection_timeout(self.connection_timeout)
            // A PING per checkout costs ~40 % of a GET (PITFALLS §10);
            // broken connections are flagged on error instead.
            .test_on_check_out(false)
            .retry_connection(false)
            .build_unchecked(self.manager.clone())
    }
}

pub struct CacheActor {
    shared: Arc<CacheShared>,
    /// This arbiter's pool.
    pool: Option<RedisPool>,
}

impl Actor for CacheActor {
    type Context = Context<Self>;
}

crate::restarts_on_panic!(CacheActor, "cache");

/// Where a read was answered from.
const FROM_L1: u8 = 0;
const FROM_REDIS: u8 = 1;
const FROM_LOADER: u8 = 2;

/// The cloneable face of the cache for handlers.
#[derive(Clone)]
pub struct CacheHandle {
    family: Family<CacheActor>,
    shared: Arc<CacheShared>,
    /// This worker's write-throughs waiting for their second look.
    rechecks: Rc<RefCell<Rechecks>>,
}

/// A write-through's key, waiting for its second look: the refill (to
/// reload it), the full key and the digest of the value stored.
type Check = (Refill, String, u64);

/// Write-throughs due for a second look, oldest first. One task looks at
/// all that are due in one round trip (`RECHECK_BATCH` apart at most), so
/// at 500 chats/s that is 20 reads and announcements a second, not 500.
/// A key written again is looked at once, for its newest value: `newest`
/// names the entry that counts, and older ones are skipped when due (a
/// lookup, where a scan of the queue per write was quadratic in a burst).
#[derive(Default)]
struct Rechecks {
    due: std::collections::VecDeque<(Instant, u64, Check)>,
    newest: HashMap<String, u64>,
    next: u64,
    looking: bool,
}

impl CacheHandle {
    /// Starts a supervised `CacheActor` on the current arbiter.
    pub fn start(shared: Arc<CacheShared>) -> Self {
        let for_actor = Arc::clone(&shared);
        let pool = shared.redis.as_ref().map(RedisRecipe::pool);
        let family = Family::start("cache", move |_| CacheActor {
            shared: Arc::clone(&for_actor),
            pool: pool.clone(),
        });
        Self {
            family,
            shared,
            rechecks: Rc::default(),
        }
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
        if !self.shared.enabled() {
            return Err(CacheError::Disabled);
        }
        if !self.shared.circuit.allow() {
            return Err(CacheError::CircuitOpen);
        }
        let ticket = self.shared.gate.admit()?;
        let out = self.family.send(operation, msg(ticket)).await;
        self.shared.note(&out);
        out
    }

    /// Redis GET, after replaying any queued invalidation: while one is
    /// unconfirmed Redis may hold a stale value, so it is not read.
    async fn redis_get(&self, full_key: String) -> Option<Vec<u8>> {
        let pending = self.shared.pending_keys();
        if !pending.is_empty() {
            if !self.redis_delete(pending.clone()).await {
                return None;
            }
            self.shared.clear_pending(&pending);
        }
        self.call("get", |ticket| Get {
            key: full_key,
            ticket,
        })
        .await
        .ok()
        .flatten()
    }

    async fn redis_delete(&self, full_keys: Vec<String>) -> bool {
        let channel = self.shared.channel.clone();
        self.call("delete", |ticket| Delete {
            keys: full_keys,
            channel,
            ticket,
        })
        .await
        .is_ok()
    }

    /// Takes one request from the shared GCRA bucket `key` (namespaced
    /// here), after charging `owed` requests admitted without it. Any error
    /// (Redis down, slow, circuit open, cache disabled) is the caller's cue
    /// to fall back to a local bucket; `Undecided::ran` then tells whether
    /// Redis charged the request (and `owed`) after all.
    pub async fn rate_limit(
        &self,
        key: &str,
        interval_us: u64,
        capacity: u32,
        owed: u32,
    ) -> Result<RateDecision, Undecided> {
        let key = self.shared.key(key);
        let (ran, settled) = tokio::sync::oneshot::channel();
        self.call("rate_limit", |ticket| RateLimit {
            key,
            interval_us,
            capacity,
            owed,
            ran,
            ticket,
        })
        .await
        .map_err(|error| Undecided { error, settled })
    }

    /// Records `instance` as alive in the set `key` and returns how many
    /// instances announced themselves within `ttl`.
    pub async fn announce_instance(
        &self,
        key: &str,
        instance: &str,
        ttl: Duration,
    ) -> Result<u64, CacheError> {
        let key = self.shared.key(key);
        let instance = instance.to_owned();
        self.call("announce", |ticket| Announce {
            key,
            instance,
            ttl,
            ticket,
        })
        .await
    }

    /// The value under `key`: from L1, else Redis, else `load` (whose result
    /// is then cached for `ttl`). Concurrent misses on one key in this
    /// process share a single `load` (no stampede).
    pub async fn get_or_load<T, E, F, Fut>(&self, key: &str, ttl: Duration, load: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let Some(l1) = self.shared.l1.clone() else {
            return load().await;
        };
        let full = self.shared.key(key);
        let source = AtomicU8::new(FROM_L1);
        let produced: Mutex<Option<T>> = Mutex::new(None);
        let bytes = l1
            .try_get_with_by_ref(&full, async {
                let load = &load;
                if let Some(b) = self.redis_get(full.clone()).await {
                    source.store(FROM_REDIS, Ordering::Relaxed);
                    return Ok::<_, E>(Arc::<[u8]>::from(b));
                }
                source.store(FROM_LOADER, Ordering::Relaxed);
                let value = (load)().await?;
                let encoded = serde_json::to_vec(&value).map_err(E::not_encodable)?;
                if let Ok(mut p) = produced.lock() {
                    *p = Some(value);
                }
                let (me, key, copy) = (self.clone(), full.clone(), encoded.clone());
                // Filling Redis is off the request's path.
                actix::spawn(async move {
                    me.set_full(key, copy, ttl, SetWhen::Absent).await;
                });
                Ok(Arc::from(encoded))
            })
            .await
            .map_err(|e| e.duplicate())?;
        let stats = &self.shared.stats;
        match source.load(Ordering::Relaxed) {
            FROM_LOADER => stats.misses.fetch_add(1, Ordering::Relaxed),
            FROM_REDIS => stats.hits.fetch_add(1, Ordering::Relaxed),
            _ => {
                stats.l1_hits.fetch_add(1, Ordering::Relaxed);
                stats.hits.fetch_add(1, Ordering::Relaxed)
            }
        };
        if let Some(v) = produced.lock().ok().and_then(|mut p| p.take()) {
            return Ok(v);
        }
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(v),
            // An entry written by an older shape of T: drop it and load.
            Err(_) => {
                l1.invalidate(&full).await;
                load().await
            }
        }
    }

    /// A fill (`announce` false) only creates the key; a refill replaces it
    /// and tells the other instances.
    async fn set_full(
        &self,
        full_key: String,
        value: Vec<u8>,
        ttl: Duration,
        when: SetWhen,
    ) -> bool {
        // A fill stays quiet; a writer's value is announced so other
        // instances drop L1 copies of the old one.
        let announce = (when != SetWhen::Absent).then(|| self.shared.channel.clone());
        let ok = self
            .call("set", |ticket| Set {
                key: full_key,
                value,
                ttl,
                when,
                announce,
                ticket,
            })
            .await
            .is_ok();
        if ok {
            self.shared.stats.sets.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Forgets `keys` here, in Redis and (via pub/sub) in every other
    /// instance's L1. Call after the database write committed. When Redis
    /// can't be told, the keys are queued and Redis is not read until they
    /// are deleted. A second delete shortly after closes the race with a
    /// concurrent reader that loaded the old row before the write.
    pub async fn invalidate(&self, keys: &[String]) {
        if !self.shared.enabled() || keys.is_empty() {
            return;
        }
        let full: Vec<String> = keys.iter().map(|k| self.shared.key(k)).collect();
        self.shared.evict_local(&full).await;
        self.shared.stats.deletes.fetch_add(1, Ordering::Relaxed);
        if !self.redis_delete(full.clone()).await {
            self.shared.queue_pending(full);
            return;
        }
        let me = self.clone();
        actix::spawn(async move {
            tokio::time::sleep(SETTLE).await;
            if !me.redis_delete(full.clone()).await {
                me.shared.queue_pending(full);
            }
        });
    }

    /// Write-through after a committed write: each key's new value (given,
    /// or reloaded from the database) replaces the old one in Redis and is
    /// announced, in one round trip, before the answer goes out, so the
    /// client's next request (through any instance) reads it as a hit.
    /// Fills only create keys (`SET NX`), so one that read the old row
    /// can't replace it. Shortly after, each value is read back and
    /// announced again (dropping L1 copies filled in the race): if a
    /// concurrent writer replaced it, it is reloaded once more, the
    /// database being the truth by then. A key whose reload failed is
    /// deleted; while Redis is unreachable this is `invalidate`'s queue.
    pub async fn refresh(&self, mut refills: Vec<Refill>) {
        if !self.shared.enabled() || refills.is_empty() {
            return;
        }
        let values = futures_util::future::join_all(refills.iter_mut().map(|r| async {
            match r.known.take() {
                Some(v) => Some(v),
                None => (r.load)().await,
            }
        }))
        .await;
        // The checks keep a digest, not the value: at 10,000 chats in flight
        // a copy of each window for 250 ms was ~80 MB.
        let digests: Vec<Option<u64>> = values.iter().map(|v| v.as_deref().map(digest)).collect();
        let entries: Vec<(String, Option<Vec<u8>>, Duration)> = refills
            .iter()
            .zip(values)
            .map(|(r, v)| (self.shared.key(&r.key), v, r.ttl))
            .collect();
        let full: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
        self.shared.evict_local(&full).await;
        let channel = self.shared.channel.clone();
        let sent = self
            .call("replace", |ticket| Replace {
                entries,
                channel,
                ticket,
            })
            .await;
        if sent.is_err() {
            self.shared.queue_pending(full);
            return;
        }
        let stats = &self.shared.stats;
        let mut checks = Vec::with_capacity(refills.len());
        for ((r, key), stored) in refills.into_iter().zip(full).zip(digests) {
            match stored {
                None => stats.deletes.fetch_add(1, Ordering::Relaxed),
                Some(stored) => {
                    checks.push((r, key, stored));
                    stats.sets.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
        self.recheck_later(checks);
    }

    /// Queues write-throughs for their second look, `SETTLE` from now, and
    /// starts the task that looks if none is running.
    fn recheck_later(&self, checks: Vec<Check>) {
        if checks.is_empty() {
            return;
        }
        let due = Instant::now() + SETTLE;
        let mut q = self.rechecks.borrow_mut();
        for check in checks {
            let seq = q.next;
            q.next += 1;
            q.newest.insert(check.1.clone(), seq);
            q.due.push_back((due, seq, check));
        }
        if !std::mem::replace(&mut q.looking, true) {
            let me = self.clone();
            actix::spawn(async move { me.look_while_due().await });
        }
    }

    /// Until the queue is empty: wait for its oldest (and whatever falls due
    /// within `RECHECK_BATCH` of it), then look at all that are due at once.
    async fn look_while_due(&self) {
        loop {
            let oldest = self.rechecks.borrow().due.front().map(|(at, ..)| *at);
            let Some(oldest) = oldest else {
                self.rechecks.borrow_mut().looking = false;
                return;
            };
            tokio::time::sleep_until((oldest + RECHECK_BATCH).into()).await;
            let now = Instant::now();
            let batch: Vec<Check> = {
                let mut q = self.rechecks.borrow_mut();
                let Rechecks { due, newest, .. } = &mut *q;
                let n = due.iter().take_while(|(at, ..)| *at <= now).count();
                due.drain(..n)
                    .filter(|(_, seq, c)| {
                        let current = newest.get(&c.1) == Some(seq);
                        if current {
                            newest.remove(&c.1);
                        }
                        current
                    })
                    .map(|(.., c)| c)
                    .collect()
            };
            self.check(batch).await;
        }
    }

    /// The second look at write-throughs, after the race window: one round
    /// trip reads them all back and announces them.
    async fn check(&self, checks: Vec<Check>) {
        let keys: Vec<String> = checks.iter().map(|c| c.1.clone()).collect();
        let now = self
            .call("recheck", |ticket| Recheck {
                keys: keys.clone(),
                channel: self.shared.channel.clone(),
                ticket,
            })
            .await;
        let now = match now {
            Ok(values) if values.len() == checks.len() => values,
            _ => return self.shared.queue_pending(keys),
        };
        for ((r, full, stored), now) in checks.into_iter().zip(now) {
            match now {
                // Ours, or gone (expired, or deleted by a newer write).
                Some(b) if digest(&b) == stored => {}
                None => {}
                // A racing writer's: reload the truth, but never over a value
                // stored after we looked (a newer write-through).
                Some(seen) => {
                    if let Some(fresh) = (r.load)().await {
                        self.set_full(full, fresh, r.ttl, SetWhen::Holds(seen))
                            .await;
                    }
                }
            }
        }
    }
}

fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// How long after a write a racing fill or writer has to land before its
/// value is checked (`refresh`) or deleted again (`invalidate`).
const SETTLE: Duration = Duration::from_millis(250);

/// How much later than `SETTLE` a write-through's second look may come, so
/// that one look serves every write-through due meanwhile.
const RECHECK_BATCH: Duration = Duration::from_millis(50);

/// A refill's reload, encoded; `None` when it failed (the key is then
/// deleted rather than refilled).
type Load = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Vec<u8>>>>>>;

/// One key for `CacheHandle::refresh`: how to reload its value, and the
/// new value itself when the writer knows it (no reload then).
pub struct Refill {
    key: String,
    ttl: Duration,
    known: Option<Vec<u8>>,
    load: Load,
}

impl Refill {
    /// `key` is relative (as for `get_or_load`); `load` reads the committed
    /// value from the database.
    pub fn new<T, E, F, Fut>(key: String, ttl: Duration, load: F) -> Self
    where
        T: Serialize,
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
    {
        let load: Load = Box::new(move || {
            let fut = load();
            Box::pin(async move { serde_json::to_vec(&fut.await.ok()?).ok() })
        });
        Self {
            key,
            ttl,
            known: None,
            load,
        }
    }

    /// The value the write produced (e.g. the new XP total), stored as is;
    /// `load` is then only needed if a racing writer replaced it. `None`:
    /// reload it.
    pub fn known<T: Serialize>(mut self, value: Option<&T>) -> Self {
        self.known = value.and_then(|v| serde_json::to_vec(v).ok());
        self
    }
}
