//! Warnings that repeat under load (every shed request, every failed
//! checkout during an outage) are logged at most once a second each; the
//! rest are counted and [`flush`] logs one summary line per kind with the
//! count per second. One WARN per 503 wrote 11 MB of logs in 30 s.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One kind of repeated warning.
#[derive(Debug)]
pub struct Throttled {
    what: &'static str,
    /// The second (since [`epoch`]) of the last line logged in full, plus one
    /// (0 = never).
    last_full: AtomicU64,
    suppressed: AtomicU64,
}

/// A request was shed because the database queue was too long or the
/// database is down.
pub static DB_SHED: Throttled = Throttled::new("database requests shed");
/// No database connection could be had (outage, pool timeout).
pub static DB_UNAVAILABLE: Throttled = Throttled::new("database unavailable");
/// A pooled connection could not be opened.
pub static DB_CONNECT: Throttled = Throttled::new("database connection failed");

const ALL: &[&Throttled] = &[&DB_SHED, &DB_UNAVAILABLE, &DB_CONNECT];

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Throttled {
    pub const fn new(what: &'static str) -> Self {
        Self {
            what,
            last_full: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Logs `detail` as a WARN if this kind was not logged in full during the
    /// current second; otherwise only counts it for the next summary.
    pub fn warn(&self, detail: impl Display) {
        if self.claim_full_line() {
            tracing::warn!(detail = %detail, "{}", self.what);
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// True for the first event of a second.
    fn claim_full_line(&self) -> bool {
        let now = epoch().elapsed().as_secs() + 1;
        let last = self.last_full.load(Ordering::Relaxed);
        last != now
            && self
                .last_full
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// The suppressed count since the last call, reset.
    pub fn take_suppressed(&self) -> u64 {
        self.suppressed.swap(0, Ordering::AcqRel)
    }
}

/// Logs one summary line per kind that had suppressed warnings since the
/// last flush `period` ago. Called every second by the server.
pub fn flush(period: Duration) {
    for t in ALL {
        let n = t.take_suppressed();
        if n > 0 {
            let per_second = n as f64 / period.as_secs_f64().max(0.001);
            tracing::warn!(
                suppressed = n,
                per_second = format_args!("{per_second:.0}"),
                "{} (repeated {n} times in {:.1}s; one line per second is logged in full)",
                t.what,
                period.as_secs_f64()
            );
        }
    }
}

/// Flushes every second on the current arbiter, for as long as it runs.
pub fn spawn_flusher() {
    actix::spawn(async {
        let period = Duration::from_secs(1);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            flush(period);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_warning_of_a_second_is_logged_and_the_rest_counted() {
        let t = Throttled::new("test");
        t.warn("a");
        for _ in 0..999 {
            t.warn("b");
        }
        // Crossing a second boundary logs one more line in full.
        assert!((998..=999).contains(&t.take_suppressed()));
        assert_eq!(t.take_suppressed(), 0);
    }
}
