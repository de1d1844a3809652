//! Background probe behind `/api/health`: the route reads a flag instead of
//! querying the database on every call, yet turns 503 within a second of an
//! outage: health is the age of the last answered probe, so a database that
//! stops answering shows however the probe task itself is doing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

#[derive(Debug)]
pub struct DbHealth {
    /// The probe connection is open (cleared on an error or a failed connect).
    connected: AtomicBool,
    /// Milliseconds since `epoch` of the last answered probe.
    last_ok_ms: AtomicU64,
    /// A `SELECT 1` is out and not answered yet.
    in_flight: AtomicBool,
    /// Milliseconds since `epoch` when the probe in flight was sent.
    sent_ms: AtomicU64,
    /// What the probe loop last reported, for logging changes.
    reported: AtomicBool,
    epoch: Instant,
    interval: Duration,
    timeout: Duration,
}

impl DbHealth {
    pub(super) fn new(interval: Duration, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            connected: AtomicBool::new(false),
            last_ok_ms: AtomicU64::new(0),
            in_flight: AtomicBool::new(false),
            sent_ms: AtomicU64::new(0),
            reported: AtomicBool::new(false),
            epoch: Instant::now(),
            interval,
            timeout,
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// True while the probe connection is open and the database answers: a
    /// probe or a real query was answered within the last interval plus
    /// deadline, or the probe out now was sent less than a deadline ago.
    /// Only a probe the database left unanswered past its deadline makes an
    /// outage: a probe thread that a busy box delays in *sending* is not one
    /// (that starved probe once turned health 503 under wrk with PostgreSQL
    /// fine). A late answer still counts when it comes, and reconnecting
    /// there (a new backend) only made it slower.
    pub fn is_connected(&self) -> bool {
        if !self.connected.load(Ordering::Acquire) {
            return false;
        }
        let now = self.now_ms();
        let age = now.saturating_sub(self.last_ok_ms.load(Ordering::Acquire));
        if age <= (self.interval + self.timeout).as_millis() as u64 + 100 {
            return true;
        }
        let waiting = now.saturating_sub(self.sent_ms.load(Ordering::Acquire));
        !self.in_flight.load(Ordering::Acquire) || waiting <= self.timeout.as_millis() as u64
    }

    /// The primary answered a query of the pool.
    pub(crate) fn saw_answer(&self) {
        self.last_ok_ms.fetch_max(self.now_ms(), Ordering::AcqRel);
    }

    fn answered(&self, ok: bool) {
        if ok {
            self.last_ok_ms.fetch_max(self.now_ms(), Ordering::AcqRel);
        }
        self.connected.store(ok, Ordering::Release);
    }

    /// Logs and exports a change of state.
    fn report(&self) {
        let up = self.is_connected();
        if self.reported.swap(up, Ordering::AcqRel) != up {
            if up {
                tracing::info!("database reachable");
            } else {
                tracing::warn!(
                    last_answer_ms_ago = self
                        .now_ms()
                        .saturating_sub(self.last_ok_ms.load(Ordering::Acquire)),
                    connection_open = self.connected.load(Ordering::Acquire),
                    "database unreachable"
                );
            }
        }
        metrics::gauge!("health_agent_db_up").set(if up { 1.0 } else { 0.0 });
    }
}

/// Probes on a dedicated connection, so a saturated pool is not mistaken for
/// an outage and an outage is seen even when the pool is idle. It runs on a
/// thread of its own so no busy actor delays it. One `SELECT 1` is out at a
/// time; the connection is replaced only when it fails or closes. Stops
/// when the `DbShared` that owns `health` is gone.
pub(super) fn spawn(config: tokio_postgres::Config, health: Arc<DbHealth>) {
    let thread = actix::Arbiter::new();
    thread.spawn(async move {
        let mut client: Option<Arc<Client>> = None;
        let mut tick = tokio::time::interval(health.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if Arc::strong_count(&health) == 1 {
                actix::Arbiter::current().stop();
                return;
            }
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                health.in_flight.store(false, Ordering::Release);
                client = match tokio::time::timeout(health.timeout, config.connect(NoTls)).await {
                    Ok(Ok((c, conn))) => {
                        actix::spawn(async move {
                            let _ = conn.await;
                        });
                        health.connected.store(true, Ordering::Release);
                        Some(Arc::new(c))
                    }
                    _ => {
                        health.answered(false);
                        health.report();
                        continue;
                    }
                };
            }
            if let Some(c) = &client {
                if !health.in_flight.load(Ordering::Acquire) {
                    health.sent_ms.store(health.now_ms(), Ordering::Release);
                    health.in_flight.store(true, Ordering::Release);
                    let (c, h) = (Arc::clone(c), Arc::clone(&health));
                    actix::spawn(async move {
                        let ok = c.simple_query("SELECT 1").await.is_ok();
                        h.in_flight.store(false, Ordering::Release);
                        h.answered(ok);
                    });
                }
            }
            health.report();
        }
    });
}
