//! Background probe behind `/api/health`: the route reads a flag instead of
//! querying the database on every call, yet turns 503 within a second of an
//! outage because a probe that does not answer in time counts as down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

/// The second chance a failed probe gets (interval 250 ms + deadline 500 ms
/// + this stays under the one second in which an outage must show).
const RETRY_TIMEOUT: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct DbHealth {
    connected: AtomicBool,
    /// Milliseconds since `epoch` of the last successful probe.
    last_ok_ms: AtomicU64,
    epoch: Instant,
    interval: Duration,
    timeout: Duration,
}

impl DbHealth {
    pub(super) fn new(interval: Duration, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            connected: AtomicBool::new(false),
            last_ok_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            interval,
            timeout,
        })
    }

    /// True when the last probe answered and is recent enough: a probe task
    /// that stalls cannot keep reporting an old success.
    pub fn is_connected(&self) -> bool {
        if !self.connected.load(Ordering::Acquire) {
            return false;
        }
        let age = self.epoch.elapsed().as_millis() as u64 - self.last_ok_ms.load(Ordering::Acquire);
        age <= (self.interval + self.timeout + RETRY_TIMEOUT).as_millis() as u64 + 100
    }

    fn mark(&self, ok: bool) {
        if ok {
            self.last_ok_ms
                .store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
        }
        let was = self.connected.swap(ok, Ordering::AcqRel);
        if was != ok {
            if ok {
                tracing::info!("database reachable");
            } else {
                tracing::warn!("database unreachable");
            }
        }
        metrics::gauge!("health_agent_db_up").set(if ok { 1.0 } else { 0.0 });
    }
}

/// Probes on a dedicated connection, so a saturated pool is not mistaken for
/// an outage and an outage is seen even when the pool is idle. It runs on a
/// thread of its own: on a shared arbiter, a busy actor draining its mailbox
/// delayed the probe's timer and socket past its deadline under load, and
/// health flapped to 503 while PostgreSQL answered everyone else. Stops
/// when the `DbShared` that owns `health` is gone.
pub(super) fn spawn(config: tokio_postgres::Config, health: Arc<DbHealth>) {
    let thread = actix::Arbiter::new();
    thread.spawn(async move {
        let mut client: Option<Client> = None;
        let mut tick = tokio::time::interval(health.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if Arc::strong_count(&health) == 1 {
                actix::Arbiter::current().stop();
                return;
            }
            let started = Instant::now();
            let mut answer =
                tokio::time::timeout(health.timeout, probe(&config, &mut client)).await;
            if !matches!(answer, Ok(true)) && health.connected.load(Ordering::Acquire) {
                // One late answer on a saturated box is not an outage: ask
                // once more on a fresh connection, within what is left of
                // the one second an outage may take to show.
                client = None;
                answer = tokio::time::timeout(RETRY_TIMEOUT, probe(&config, &mut client)).await;
            }
            let ok = matches!(answer, Ok(true));
            if !ok {
                // Why health is about to say 503: a deadline or an error, and
                // whether it was a fresh connection.
                tracing::warn!(
                    timed_out = answer.is_err(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    reconnecting = client.is_none(),
                    "database probe failed"
                );
            }
            if !ok {
                client = None;
            }
            health.mark(ok);
        }
    });
}

async fn probe(config: &tokio_postgres::Config, client: &mut Option<Client>) -> bool {
    if client.as_ref().is_none_or(|c| c.is_closed()) {
        match config.connect(NoTls).await {
            Ok((c, conn)) => {
                actix::spawn(async move {
                    let _ = conn.await;
                });
                *client = Some(c);
            }
            Err(_) => return false,
        }
    }
    match client {
        Some(c) => c.simple_query("SELECT 1").await.is_ok(),
        None => false,
    }
}
