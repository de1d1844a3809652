//! How long a new operation would wait for a pooled connection, so that
//! overload is shed at arrival in microseconds instead of after a wait that
//! ends in a 503 anyway.
//!
//! By Little's law an operation that finds `n` others waiting for one of
//! `size` connections, each held for `h` on average, waits about
//! `n × h / size`. The hold time is a moving average of real checkouts, so
//! the estimate follows the database and the box as they slow down.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The waiters and the connection hold time of one pool.
#[derive(Debug, Default)]
pub(crate) struct QueueEstimate {
    waiting: AtomicUsize,
    hold_us: AtomicU64,
}

impl QueueEstimate {
    /// The wait a new operation can expect on a pool of `size` connections
    /// that are all in use.
    pub(crate) fn expected_wait(&self, size: u32) -> Duration {
        let waiting = self.waiting.load(Ordering::Relaxed) as u64;
        let hold = self.hold_us.load(Ordering::Relaxed);
        Duration::from_micros(waiting.saturating_mul(hold) / u64::from(size.max(1)))
    }

    /// Counts an operation as waiting until the returned guard is told it
    /// has a connection, or is dropped.
    pub(crate) fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting {
            queue: self,
            waiting: true,
        }
    }

    /// Folds one connection's hold time into the average (weight 1/8: a few
    /// dozen operations follow a change, one slow query does not).
    fn record_hold(&self, held: Duration) {
        let x = held.as_micros().min(u128::from(u64::MAX)) as u64;
        // Concurrent updates may lose one sample; the average does not mind.
        let old = self.hold_us.load(Ordering::Relaxed);
        let new = if old == 0 { x } else { old - old / 8 + x / 8 };
        self.hold_us.store(new, Ordering::Relaxed);
    }
}

/// One operation's place in the estimate: waiting, then holding.
#[derive(Debug)]
pub(crate) struct Waiting<'q> {
    queue: &'q QueueEstimate,
    waiting: bool,
}

impl<'q> Waiting<'q> {
    /// The operation has its connection: it stops waiting and its hold time
    /// is measured until the returned guard drops.
    pub(crate) fn holding(mut self) -> Holding<'q> {
        self.stop_waiting();
        Holding {
            queue: self.queue,
            since: Instant::now(),
        }
    }

    fn stop_waiting(&mut self) {
        if std::mem::take(&mut self.waiting) {
            self.queue.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.stop_waiting();
    }
}

/// Measures how long an operation holds its connection.
#[derive(Debug)]
pub(crate) struct Holding<'q> {
    queue: &'q QueueEstimate,
    since: Instant,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.queue.record_hold(self.since.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_with_the_waiters_and_shrinks_with_the_pool() {
        let q = QueueEstimate::default();
        q.record_hold(Duration::from_millis(16));
        let waiters: Vec<_> = (0..32).map(|_| q.wait()).collect();
        assert_eq!(q.expected_wait(16), Duration::from_millis(32));
        assert_eq!(q.expected_wait(32), Duration::from_millis(16));
        drop(waiters);
        assert_eq!(q.expected_wait(16), Duration::ZERO);
    }

    #[test]
    fn a_waiter_that_gets_its_connection_stops_counting() {
        let q = QueueEstimate::default();
        q.record_hold(Duration::from_millis(10));
        let a = q.wait();
        let _b = q.wait();
        assert_eq!(q.expected_wait(1), Duration::from_millis(20));
        let held = a.holding();
        assert_eq!(q.expected_wait(1), Duration::from_millis(10));
        // A hold of about nothing pulls the average down by an eighth.
        drop(held);
        let after = q.expected_wait(1);
        assert!(
            (Duration::from_millis(8)..Duration::from_millis(9)).contains(&after),
            "{after:?}"
        );
    }

    #[test]
    fn the_hold_time_follows_a_change_but_not_one_outlier() {
        let q = QueueEstimate::default();
        q.record_hold(Duration::from_millis(8));
        q.record_hold(Duration::from_secs(1));
        let after_outlier = q.hold_us.load(Ordering::Relaxed);
        assert!(after_outlier < 140_000, "{after_outlier} µs");
        for _ in 0..40 {
            q.record_hold(Duration::from_millis(40));
        }
        let settled = q.hold_us.load(Ordering::Relaxed);
        assert!((39_000..=41_000).contains(&settled), "{settled} µs");
    }
}
