//! `MetricsActor`: aggregates request-completed events into the figures
//! `/api/v1/metrics` reports (totals, errors, slow requests, latency
//! quantiles). Prometheus series are recorded directly by the `metrics`
//! macros, which are already concurrent; this actor keeps what needs one owner.

mod histogram;
mod system;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{
    Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, Supervised, Supervisor,
};

pub use histogram::LatencyHistogram;
pub use system::SystemFigures;

use crate::gate::{Gate, Ticket};

/// Sent by the HTTP layer after every response. Dropped (and counted as a
/// rejection) when the actor's gate is full: metrics never slow requests.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestCompleted {
    pub status: u16,
    pub duration: Duration,
    pub slow: bool,
    pub ticket: Ticket,
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
    total: u64,
    errors: u64,
    slow: u64,
    latency: LatencyHistogram,
    gate: Option<Gate>,
    system: Arc<Mutex<SystemFigures>>,
    sampler: Option<system::Sampler>,
}

/// How often CPU, memory and disk are sampled.
const SYSTEM_SAMPLE_EVERY: Duration = Duration::from_secs(2);

impl MetricsActor {
    fn summary(&self) -> RequestSummary {
        RequestSummary {
            total: self.total,
            errors: self.errors,
            slow: self.slow,
            p50_ms: self.latency.quantile_ms(0.50),
            p95_ms: self.latency.quantile_ms(0.95),
            p99_ms: self.latency.quantile_ms(0.99),
        }
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.sampler.is_none() {
            self.sampler = Some(system::Sampler::new(Arc::clone(&self.system)));
        }
        ctx.run_interval(SYSTEM_SAMPLE_EVERY, |act, _| {
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

impl Handler<RequestCompleted> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: RequestCompleted, _ctx: &mut Self::Context) {
        let RequestCompleted {
            status,
            duration,
            slow,
            mut ticket,
        } = msg;
        ticket.start();
        self.total += 1;
        if status >= 500 {
            self.errors += 1;
        }
        if slow {
            self.slow += 1;
        }
        self.latency.record(duration);
    }
}

impl Handler<GetRequestSummary> for MetricsActor {
    type Result = MessageResult<GetRequestSummary>;

    fn handle(&mut self, _: GetRequestSummary, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.summary())
    }
}

impl Handler<Flush> for MetricsActor {
    type Result = MessageResult<Flush>;

    fn handle(&mut self, _: Flush, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.summary())
    }
}

/// The cloneable face of the single metrics actor.
#[derive(Clone)]
pub struct MetricsHandle {
    addr: Addr<MetricsActor>,
    gate: Gate,
    system: Arc<Mutex<SystemFigures>>,
}

impl MetricsHandle {
    /// Starts the one aggregator on a thread of its own.
    pub fn start(mailbox_capacity: usize) -> Self {
        let gate = Gate::new("metrics", mailbox_capacity);
        let system = Arc::new(Mutex::new(SystemFigures::default()));
        let (g, sys) = (gate.clone(), Arc::clone(&system));
        // Its own thread: one message per request must not starve whatever
        // else shares an arbiter (the database probe did, on the system one).
        let addr =
            Supervisor::start_in_arbiter(&actix::Arbiter::new().handle(), move |_| MetricsActor {
                gate: Some(g),
                system: sys,
                ..Default::default()
            });
        Self { addr, gate, system }
    }

    /// The latest CPU, memory and disk sample.
    pub fn system(&self) -> SystemFigures {
        self.system.lock().map(|s| *s).unwrap_or_default()
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Records a finished request without waiting; drops it when full.
    pub fn request_completed(&self, status: u16, duration: Duration, slow: bool) {
        if let Ok(ticket) = self.gate.admit() {
            // The gate bounds the queue, so do_send cannot grow it without limit.
            self.addr.do_send(RequestCompleted {
                status,
                duration,
                slow,
                ticket,
            });
        }
    }

    pub async fn summary(&self) -> Option<RequestSummary> {
        self.addr.send(GetRequestSummary).await.ok()
    }

    pub async fn flush(&self) -> Option<RequestSummary> {
        self.addr.send(Flush).await.ok()
    }
}
