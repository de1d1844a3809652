//! `MetricsActor`: owns the figures `/api/v1/metrics` reports (request
//! totals, errors, slow requests, latency quantiles) and samples CPU, memory
//! and disk. Workers record each request into shared atomic counters, as the
//! `metrics` macros do for Prometheus: a message per request woke the actor's
//! thread ~90k times a second on the health route and cost ~12 % of its
//! throughput. The actor reads the counters when asked.

mod histogram;
mod system;
mod trim;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{
    Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, Supervised, Supervisor,
};

pub use histogram::LatencyHistogram;
pub use system::SystemFigures;

use crate::gate::Gate;

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

/// Sent by the metrics route: the request figures so far.
#[derive(Message)]
#[rtype(result = "RequestSummary")]
pub struct GetRequestSummary;

/// Sent at shutdown, after the server drained: everything before it is counted.
#[derive(Message)]
#[rtype(result = "RequestSummary")]
pub struct Flush;

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
    gate: Option<Gate>,
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

impl Supervised for MetricsActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        if let Some(g) = &self.gate {
            g.stats().record_restart();
        }
    }
}

impl Handler<GetRequestSummary> for MetricsActor {
    type Result = MessageResult<GetRequestSummary>;

    fn handle(&mut self, _: GetRequestSummary, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.requests.summary())
    }
}

impl Handler<Flush> for MetricsActor {
    type Result = MessageResult<Flush>;

    fn handle(&mut self, _: Flush, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.requests.summary())
    }
}

/// The cloneable face of the single metrics actor.
#[derive(Clone)]
pub struct MetricsHandle {
    addr: Addr<MetricsActor>,
    requests: Arc<RequestFigures>,
    gate: Gate,
    system: Arc<Mutex<SystemFigures>>,
}

impl MetricsHandle {
    /// Starts the one aggregator on a thread of its own.
    pub fn start(mailbox_capacity: usize) -> Self {
        let gate = Gate::new("metrics", mailbox_capacity);
        let system = Arc::new(Mutex::new(SystemFigures::default()));
        let requests = Arc::new(RequestFigures::default());
        let (g, sys, req) = (gate.clone(), Arc::clone(&system), Arc::clone(&requests));
        // Its own thread: sampling /proc must not delay whatever else shares
        // an arbiter (the database probe, on the system one).
        let addr =
            Supervisor::start_in_arbiter(&actix::Arbiter::new().handle(), move |_| MetricsActor {
                requests: Arc::clone(&req),
                gate: Some(g.clone()),
                system: Arc::clone(&sys),
                sampler: None,
                trimmer: None,
            });
        Self {
            addr,
            requests,
            gate,
            system,
        }
    }

    /// The latest CPU, memory and disk sample.
    pub fn system(&self) -> SystemFigures {
        self.system.lock().map(|s| *s).unwrap_or_default()
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Records a finished request (a few atomic adds, no message).
    pub fn request_completed(&self, status: u16, duration: Duration, slow: bool) {
        self.requests.record(status, duration, slow);
    }

    /// `None` when the actor's gate is full or it is restarting.
    pub async fn summary(&self) -> Option<RequestSummary> {
        let _ticket = self.gate.admit().ok()?;
        self.addr.send(GetRequestSummary).await.ok()
    }

    pub async fn flush(&self) -> Option<RequestSummary> {
        self.addr.send(Flush).await.ok()
    }
}
