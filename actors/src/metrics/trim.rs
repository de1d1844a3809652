//! Returns freed heap to the operating system once load falls.
//!
//! glibc keeps what a burst freed in its arenas: after 10,000 chats the
//! process kept ~650 MB although almost none of it was in use. `malloc_trim`
//! hands the free pages back (`madvise`), but walks every arena under its
//! lock, so it runs only when the request rate has halved or the server is
//! quiet, at most every [`TRIM_EVERY`].

use std::time::{Duration, Instant};

/// The least time between two trims.
pub(super) const TRIM_EVERY: Duration = Duration::from_secs(10);
/// Fewer requests than this between two samples is quiet.
const QUIET: u64 = 100;

/// Decides when to trim from the running request total.
#[derive(Debug)]
pub(super) struct Trimmer {
    last_total: u64,
    last_delta: u64,
    last_trim: Instant,
}

impl Trimmer {
    pub(super) fn new(total: u64, now: Instant) -> Self {
        Self {
            last_total: total,
            last_delta: 0,
            last_trim: now,
        }
    }

    /// Called on every sample with the request total so far; true when the
    /// heap should be trimmed now.
    pub(super) fn due(&mut self, total: u64, now: Instant) -> bool {
        let delta = total.saturating_sub(self.last_total);
        let falling = delta < QUIET || delta.saturating_mul(2) <= self.last_delta;
        self.last_total = total;
        self.last_delta = delta;
        if falling && now.duration_since(self.last_trim) >= TRIM_EVERY {
            self.last_trim = now;
            true
        } else {
            false
        }
    }
}

/// Gives free heap pages back to the kernel, where the allocator can.
pub(super) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory glibc's allocator holds
    // free; it takes the arena locks itself and touches nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_trims_when_the_rate_halves_or_goes_quiet_but_not_under_steady_load() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut t = Trimmer::new(0, t0);
        // Steady load: 5,000 requests per sample.
        let mut total = 0;
        for s in 1..=10 {
            total += 5_000;
            assert!(!t.due(total, at(s * 2)), "steady load at {s}");
        }
        // The burst ends: the rate halves, and the heap is trimmed once.
        total += 1_000;
        assert!(t.due(total, at(22)));
        total += 10;
        assert!(!t.due(total, at(24)), "within TRIM_EVERY of the last trim");
        total += 10;
        assert!(t.due(total, at(32)), "quiet, and TRIM_EVERY has passed");
    }
}
