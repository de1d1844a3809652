use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Log-scaled latency histogram: 5 % wide buckets from 10 µs to ~10 min, so a
/// quantile is within 5 % of the truth at any scale, in fixed memory. Atomic
/// counts: every worker records into it directly, without a message.
#[derive(Debug)]
pub struct LatencyHistogram {
    counts: Vec<AtomicU64>,
    total: AtomicU64,
}

const MIN_US: f64 = 10.0;
const GROWTH: f64 = 1.05;
const BUCKETS: usize = 370;

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    pub fn record(&self, d: Duration) {
        let us = d.as_secs_f64() * 1e6;
        let idx = if us <= MIN_US {
            0
        } else {
            ((us / MIN_US).ln() / GROWTH.ln()).ceil() as usize
        };
        self.counts[idx.min(BUCKETS - 1)].fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
    }

    /// The upper bound, in ms, of the bucket holding the `q` quantile (0 when empty).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let total = self.total.load(Relaxed);
        if total == 0 {
            return 0.0;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed);
            if seen >= rank {
                let ms = MIN_US * GROWTH.powi(i as i32) / 1e3;
                return (ms * 100.0).round() / 100.0;
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_five_percent() {
        let h = LatencyHistogram::default();
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        for (q, want) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile_ms(q);
            assert!((got - want).abs() / want <= 0.05, "q{q}: {got} vs {want}");
        }
    }

    #[test]
    fn an_empty_histogram_reports_zero() {
        assert_eq!(LatencyHistogram::default().quantile_ms(0.99), 0.0);
    }
}
