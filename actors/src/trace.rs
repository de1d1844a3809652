//! Per-request record of the time spent in each actor's mailbox and handler.
//!
//! The HTTP layer wraps each request in [`scope`]; actor handles call
//! [`record`] after every reply. Because actix-web polls a handler inside its
//! middleware's future, the task-local reaches every `.await` of the request
//! without threading a context through each call.

use std::cell::RefCell;
use std::future::Future;
use std::time::Instant;

use crate::gate::Timing;

/// One actor call made while serving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub actor: &'static str,
    pub operation: &'static str,
    pub timing: Timing,
}

struct Request {
    arrived: Instant,
    hops: RefCell<Vec<Hop>>,
}

tokio::task_local! {
    static REQUEST: Request;
}

/// Runs `fut` with an empty trace and returns its output with the hops it made.
pub async fn scope<F: Future>(fut: F) -> (F::Output, Vec<Hop>) {
    let request = Request {
        arrived: Instant::now(),
        hops: RefCell::new(Vec::new()),
    };
    REQUEST
        .scope(request, async move {
            let out = fut.await;
            let hops = REQUEST.with(|r| r.hops.take());
            (out, hops)
        })
        .await
}

/// When the current request arrived, if there is one: queue budgets count
/// from there, since the client waits from there.
pub fn arrived() -> Option<Instant> {
    REQUEST.try_with(|r| r.arrived).ok()
}

/// Adds a hop to the current request's trace, if there is one.
pub fn record(actor: &'static str, operation: &'static str, timing: Timing) {
    let _ = REQUEST.try_with(|r| {
        r.hops.borrow_mut().push(Hop {
            actor,
            operation,
            timing,
        })
    });
}
