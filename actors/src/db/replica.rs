//! Whether reads may go to the replica: it answers, and it has replayed what
//! the primary had written no longer than `max_lag` ago.
//!
//! Lag is measured in time from WAL positions, not from
//! `pg_last_xact_replay_timestamp()` (which grows on an idle primary though
//! nothing is missing): each round samples the primary's
//! `pg_current_wal_lsn()`, then the replica's `pg_last_wal_replay_lsn()`; the
//! replica holds everything the primary had at the newest sample whose
//! position it has replayed, so the lag is that sample's age.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::{Client, NoTls};

#[derive(Debug)]
pub struct ReplicaHealth {
    usable: AtomicBool,
    reachable: AtomicBool,
    /// The replica answers again after it did not: the pool's idle
    /// connections are dead (no checkout test) and must be replaced.
    stale_pool: AtomicBool,
    lag_ms: AtomicU64,
    /// Times reads moved to the primary (usable → not usable).
    fallbacks: AtomicU64,
    /// Reads served by the primary because the replica was not usable.
    fallback_reads: AtomicU64,
    interval: Duration,
    timeout: Duration,
    max_lag: Duration,
}

/// The replica's figures for `/api/v1/metrics`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ReplicaSnapshot {
    /// Reads go to the replica now.
    pub usable: bool,
    pub reachable: bool,
    pub lag_ms: u64,
    pub max_lag_ms: u64,
    pub fallbacks: u64,
    pub fallback_reads: u64,
}

impl ReplicaHealth {
    pub(super) fn new(interval: Duration, timeout: Duration, max_lag: Duration) -> Arc<Self> {
        Arc::new(Self {
            // Not before the first round has measured it.
            usable: AtomicBool::new(false),
            reachable: AtomicBool::new(false),
            stale_pool: AtomicBool::new(false),
            lag_ms: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            fallback_reads: AtomicU64::new(0),
            interval,
            timeout,
            max_lag,
        })
    }

    pub fn usable(&self) -> bool {
        self.usable.load(Ordering::Acquire)
    }

    pub(super) fn count_fallback_read(&self) {
        self.fallback_reads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("health_agent_db_replica_fallback_reads_total").increment(1);
    }

    pub fn snapshot(&self) -> ReplicaSnapshot {
        ReplicaSnapshot {
            usable: self.usable(),
            reachable: self.reachable.load(Ordering::Acquire),
            lag_ms: self.lag_ms.load(Ordering::Acquire),
            max_lag_ms: self.max_lag.as_millis() as u64,
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            fallback_reads: self.fallback_reads.load(Ordering::Relaxed),
        }
    }

    /// True once after the replica came back: rebuild its pool.
    pub(super) fn take_stale_pool(&self) -> bool {
        self.stale_pool.swap(false, Ordering::AcqRel)
    }

    /// Records one round's verdict; logs and counts a change.
    fn set(&self, reachable: bool, lag: Option<Duration>) {
        if !reachable {
            self.stale_pool.store(true, Ordering::Release);
        }
        self.reachable.store(reachable, Ordering::Release);
        if let Some(lag) = lag {
            self.lag_ms.store(lag.as_millis() as u64, Ordering::Release);
        }
        let lag_ms = self.lag_ms.load(Ordering::Acquire);
        let usable = reachable && lag.is_some_and(|l| l <= self.max_lag);
        let was = self.usable.swap(usable, Ordering::AcqRel);
        if was && !usable {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("health_agent_db_replica_fallbacks_total").increment(1);
            tracing::warn!(
                reachable,
                lag_ms,
                "replica not usable: reads go to the primary"
            );
        } else if !was && usable {
            tracing::info!(lag_ms, "replica usable: reads go to it");
        }
        metrics::gauge!("health_agent_db_replica_usable").set(if usable { 1.0 } else { 0.0 });
        metrics::gauge!("health_agent_db_replica_lag_ms").set(lag_ms as f64);
    }
}

/// WAL positions of the primary, oldest first, with when they were read.
#[derive(Debug, Default)]
struct Samples(VecDeque<(Instant, i64)>);

impl Samples {
    const KEEP: Duration = Duration::from_secs(120);

    fn push(&mut self, at: Instant, lsn: i64) {
        self.0.push_back((at, lsn));
        while self
            .0
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > Self::KEEP)
        {
            self.0.pop_front();
        }
    }

    /// How long ago the primary was last at a position the replica has
    /// replayed; `None` when the replica is behind every kept sample.
    fn lag(&self, replayed: i64, now: Instant) -> Option<Duration> {
        self.0
            .iter()
            .rev()
            .find(|(_, lsn)| *lsn <= replayed)
            .map(|(t, _)| now.duration_since(*t))
    }
}

/// Measures the replica every probe interval on dedicated connections to both
/// servers, on a thread of its own (like the primary's probe). Stops when
/// the `DbShared` that owns `health` is gone.
pub(super) fn spawn(
    primary: tokio_postgres::Config,
    replica: tokio_postgres::Config,
    health: Arc<ReplicaHealth>,
) {
    let thread = actix::Arbiter::new();
    thread.spawn(async move {
        let (mut p, mut r): (Option<Client>, Option<Client>) = (None, None);
        let mut samples = Samples::default();
        let mut tick = tokio::time::interval(health.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if Arc::strong_count(&health) == 1 {
                actix::Arbiter::current().stop();
                return;
            }
            let primary_lsn = query_lsn(&primary, &mut p, health.timeout, PRIMARY_LSN).await;
            let at = Instant::now();
            if let Some(lsn) = primary_lsn {
                samples.push(at, lsn);
            }
            match query_lsn(&replica, &mut r, health.timeout, REPLICA_LSN).await {
                Some(replayed) => {
                    let lag = match (primary_lsn, samples.lag(replayed, at)) {
                        // Without the primary's position the lag is unknown: keep the last.
                        (None, _) => Duration::from_millis(health.lag_ms.load(Ordering::Acquire)),
                        (Some(_), Some(lag)) => lag,
                        // Behind every kept sample: at least the oldest one's
                        // age, and never usable.
                        (Some(_), None) => samples
                            .0
                            .front()
                            .map(|(t, _)| at.duration_since(*t))
                            .unwrap_or_default()
                            .max(health.max_lag + Duration::from_millis(1)),
                    };
                    health.set(true, Some(lag));
                }
                None => health.set(false, None),
            }
        }
    });
}

const PRIMARY_LSN: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint";
// A server that is not in recovery (promoted) has everything: its own position.
const REPLICA_LSN: &str = "SELECT (COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn()) \
     - '0/0'::pg_lsn)::bigint";

/// One position from `sql` on a dedicated connection, (re)connecting as
/// needed; `None` on any failure or past `timeout` (the connection is dropped).
async fn query_lsn(
    config: &tokio_postgres::Config,
    client: &mut Option<Client>,
    timeout: Duration,
    sql: &str,
) -> Option<i64> {
    if client.as_ref().is_none_or(|c| c.is_closed()) {
        *client = match tokio::time::timeout(timeout, config.connect(NoTls)).await {
            Ok(Ok((c, conn))) => {
                actix::spawn(async move {
                    let _ = conn.await;
                });
                Some(c)
            }
            _ => None,
        };
    }
    let c = client.as_ref()?;
    match tokio::time::timeout(timeout, c.query_one(sql, &[])).await {
        Ok(Ok(row)) => row.try_get::<_, i64>(0).ok(),
        _ => {
            *client = None;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_newest_position_the_replica_has() {
        let t0 = Instant::now();
        let mut s = Samples::default();
        s.push(t0, 100);
        s.push(t0 + Duration::from_millis(200), 150);
        s.push(t0 + Duration::from_millis(400), 150);
        s.push(t0 + Duration::from_millis(600), 300);
        let now = t0 + Duration::from_millis(600);
        assert_eq!(s.lag(300, now), Some(Duration::ZERO));
        assert_eq!(s.lag(150, now), Some(Duration::from_millis(200)));
        assert_eq!(s.lag(120, now), Some(Duration::from_millis(600)));
        assert_eq!(s.lag(99, now), None);
    }
}
