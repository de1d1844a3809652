//! A circuit breaker, shared by the LLM providers and the cache: after
//! `threshold` consecutive failed calls the dependency is skipped for
//! `open_for` (callers fail over, fall back or fail fast instead of each
//! waiting out timeouts and retries), then one call probes it; a success
//! closes the circuit, a failure opens it again.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Circuit {
    threshold: u32,
    open_for: Duration,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the circuit is open (0 = closed).
    open_until_ms: AtomicU64,
    epoch: Instant,
}

impl Circuit {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether a call may go out now. When the open period is over, the first
    /// caller gets through (the half-open probe) and re-arms the timer, so the
    /// others keep failing fast until the probe has answered; a probe that
    /// never reports (its caller gave up) just means another one later.
    pub(crate) fn allow(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= until
            && self
                .open_until_ms
                .compare_exchange(
                    until,
                    now + self.open_for.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    /// How long until a call would be let through (zero: now), without
    /// taking the probe.
    pub(crate) fn wait(&self) -> Duration {
        let until = self.open_until_ms.load(Ordering::Acquire);
        Duration::from_millis(until.saturating_sub(self.now_ms()))
    }

    pub(crate) fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.open_until_ms.store(0, Ordering::Release);
    }

    pub(crate) fn failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.threshold {
            let until = self.now_ms() + self.open_for.as_millis() as u64;
            self.open_until_ms.store(until.max(1), Ordering::Release);
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_opens_after_the_threshold_and_lets_one_probe_through_later() {
        let c = Circuit::new(3, Duration::from_millis(30));
        c.failure();
        c.failure();
        assert!(c.allow() && c.wait().is_zero());
        c.failure();
        assert!(!c.allow());
        assert!(c.wait() > Duration::ZERO);
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.wait().is_zero());
        assert!(c.allow(), "half-open probe");
        assert!(!c.allow(), "only one probe");
        c.success();
        assert!(c.allow() && !c.is_open());
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let c = Circuit::new(1, Duration::from_millis(20));
        c.failure();
        std::thread::sleep(Duration::from_millis(25));
        assert!(c.allow());
        c.failure();
        assert!(!c.allow() && c.is_open());
    }
}
