//! Per-request record of the time spent in each actor's mailbox and handler.
//!
//! The HTTP layer wraps each request in [`scope`]; actor handles call
//! [`record`] after every reply. Because actix-web polls a handler inside its
//! middleware's future, the task-local reaches every `.await` of the request
//! without threading a context through each call.

use std::cell::RefCell;
use std::future::Future;

use crate::gate::Timing;

/// One actor call made while serving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub actor: &'static str,
    pub operation: &'static str,
    pub timing: Timing,
}

tokio::task_local! {
    static HOPS: RefCell<Vec<Hop>>;
}

/// Runs `fut` with an empty trace and returns its output with the hops it made.
pub async fn scope<F: Future>(fut: F) -> (F::Output, Vec<Hop>) {
    HOPS.scope(RefCell::new(Vec::new()), async move {
        let out = fut.await;
        let hops = HOPS.with(|h| h.take());
        (out, hops)
    })
    .await
}

/// Adds a hop to the current request's trace, if there is one.
pub fn record(actor: &'static str, operation: &'static str, timing: Timing) {
    let _ = HOPS.try_with(|h| {
        h.borrow_mut().push(Hop {
            actor,
            operation,
            timing,
        })
    });
}
