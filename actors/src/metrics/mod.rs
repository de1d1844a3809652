//! `MetricsActor`: samples CPU, memory and disk and returns freed heap to
//! the system, on a timer. The request figures `/api/v1/metrics` reports
//! (totals, errors, slow requests, latency quantiles) are shared atomic
//! counters that workers add to and the route reads, as the `metrics`
//! macros do for Prometheus: a message per request woke the actor's thread
//! ~90k times a second on the health route and cost ~12 % of its
//! throughput, and reading atomics needs no message either. So nothing
//! messages this actor, and it has no mailbox gate.

mod histogram;
mod system;
mod trim;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context, Supervised, Supervisor};

pub use histogram::LatencyHistogram;
pub use system::SystemFigures;

/// Request figures, recorded by every worker, read by the actor.
#[derive(Debug, Default)]
pub struct RequestFigures {
    total: AtomicU64,
    errors: AtomicU64,
    slow: AtomicU64,
    latency: LatencyHistogram,
}

impl RequestFigures {
    fn record(&self, status: u16, duration: Duration, slow: bool) {
        self.total.fetch_add(1, Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Relaxed);
        }
        if slow {
            self.slow.fetch_add(1, Relaxed);
        }
        self.latency.record(duration);
    }

    fn summary(&self) -> RequestSummary {
        RequestSummary {
            total: self.total.load(Relaxed),
            errors: self.errors.load(Relaxed),
            slow: self.slow.load(Relaxed),
            p50_ms: self.latency.quantile_ms(0.50),
            p95_ms: self.latency.quantile_ms(0.95),
            p99_ms: self.latency.quantile_ms(0.99),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RequestSummary {
    pub total: u64,
    pub errors: u64,
    pub slow: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Default)]
pub struct MetricsActor {
    requests: Arc<RequestFigures>,
    system: Arc<Mutex<SystemFigures>>,
    sampler: Option<system::Sampler>,
    trimmer: Option<trim::Trimmer>,
}

/// How often CPU, memory and disk are sampled.
const SYSTEM_SAMPLE_EVERY: Duration = Duration::from_secs(2);

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.sampler.is_none() {
            self.sampler = Some(system::Sampler::new(Arc::clone(&self.system)));
        }
        let now = std::time::Instant::now();
        let total = self.requests.total.load(Relaxed);
        self.trimmer
            .get_or_insert_with(|| trim::Trimmer::new(total, now));
        ctx.run_interval(SYSTEM_SAMPLE_EVERY, |act, _| {
            let total = act.requests.total.load(Relaxed);
            if let Some(t) = act.trimmer.as_mut() {
                if t.due(total, std::time::Instant::now()) {
                    trim::trim();
                }
            }
            if let Some(s) = act.sampler.as_mut() {
                s.sample();
            }
        });
    }
}

// Nothing in it can panic a handler (it has none), but it is started
// under a Supervisor like the other families.
impl Supervised for MetricsActor {}

/// The cloneable face of the single metrics actor.
#[derive(Clone)]
pub struct MetricsHandle {
    /// Kept so the actor lives as long as a handle does.
    _addr: Addr<MetricsActor>,
    requests: Arc<RequestFigures>,
    system: Arc<Mutex<SystemFigures>>,
}

impl MetricsHandle {
    /// Starts the one aggregator on a thread of its own.
    pub fn start() -> Self {
        let system = Arc::new(Mutex::new(SystemFigures::default()));
        let requests = Arc::new(RequestFigures::default());
        let (sys, req) = (Arc::clone(&system), Arc::clone(&requests));
        // Its own thread: sampling /proc must not delay whatever else shares
        // an arbiter (the database probe, on the system one).
        let addr =
            Supervisor::start_in_arbiter(&actix::Arbiter::new().handle(), move |_| MetricsActor {
                requests: Arc::clone(&req),
                system: Arc::clone(&sys),
                sampler: None,
                trimmer: None,
            });
        Self {
            _addr: addr,
            requests,
            system,
        }
    }

    /// The latest CPU, memory and disk sample.
    pub fn system(&self) -> SystemFigures {
        self.system.lock().map(|s| *s).unwrap_or_default()
    }

    /// Records a finished request (a few atomic adds, no message).
    pub fn request_completed(&self, status: u16, duration: Duration, slow: bool) {
        self.requests.record(status, duration, slow);
    }

    /// The request figures so far: every request finished before the call
    /// is counted (workers add before they answer).
    pub fn summary(&self) -> RequestSummary {
        self.requests.summary()
    }
}
