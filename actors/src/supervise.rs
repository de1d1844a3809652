//! What every actor's handler does around its work: a deadline, a caught
//! panic that restarts the actor, and the mailbox/service timing.
//!
//! actix's `Supervisor` restarts an actor that *stops*, not one that panics
//! (a panic unwinds its task and closes the mailbox for good), so panics are
//! caught here and turned into a `Restart` message the actor answers by stopping.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use actix::{Message, Recipient, ResponseFuture};
use futures_util::FutureExt;

use crate::error::ActorError;
use crate::gate::{Ticket, Timing};

/// Sent by an actor's own handler after a panic: stop, so the supervisor
/// restarts the actor with fresh state.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Restart;

/// An error type that can say "too slow" and "the actor failed".
pub trait ServeError: From<ActorError> {
    fn timed_out() -> Self;
}

/// Wraps an actor's work: starts the ticket's service clock, bounds the work
/// by `deadline`, catches a panic (answered as `Panicked` plus a restart), and
/// replies with the ticket's timing.
pub fn serve<T, E, F>(
    actor: &'static str,
    operation: &'static str,
    mut ticket: Ticket,
    deadline: Duration,
    restart: Recipient<Restart>,
    work: F,
) -> ResponseFuture<(Result<T, E>, Timing)>
where
    T: 'static,
    E: ServeError + 'static,
    F: Future<Output = Result<T, E>> + 'static,
{
    ticket.start();
    Box::pin(async move {
        let guarded = AssertUnwindSafe(tokio::time::timeout(deadline, work));
        let out = match guarded.catch_unwind().await {
            Ok(Ok(result)) => result,
            Ok(Err(_elapsed)) => Err(E::timed_out()),
            Err(_panic) => {
                tracing::error!(
                    actor,
                    operation,
                    "actor handler panicked; restarting the actor"
                );
                restart.do_send(Restart);
                Err(ActorError::Panicked { actor }.into())
            }
        };
        (out, ticket.timing())
    })
}
