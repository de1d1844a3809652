//! What every supervised actor family shares: its address, how a call is
//! sent and traced, and how the actor restarts after a caught panic.
//!
//! A call's message carries its admission ticket (taken by the handle, from
//! the family's `Gate`, before anything else), and answers with the work's
//! result and the ticket's timing.

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message, Supervised, Supervisor};

use crate::error::ActorError;
use crate::gate::Timing;
use crate::trace;

/// One family's supervised actor on this arbiter, and its name in traces,
/// metrics and errors.
pub struct Family<A: Actor> {
    addr: Addr<A>,
    name: &'static str,
}

impl<A: Actor> Clone for Family<A> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            name: self.name,
        }
    }
}

impl<A> Family<A>
where
    A: Actor<Context = actix::Context<A>> + Supervised,
{
    /// Starts the actor under a `Supervisor` on the current arbiter; `make`
    /// builds it again after each restart.
    pub fn start(
        name: &'static str,
        make: impl FnMut(&mut actix::Context<A>) -> A + 'static,
    ) -> Self {
        Self {
            addr: Supervisor::start(make),
            name,
        }
    }

    /// Sends `msg` and records its time in the mailbox and in service in
    /// the request's trace as `operation`. A mailbox closed by a restart
    /// in progress is the family's `ActorError`.
    pub async fn send<M, T, E>(&self, operation: &'static str, msg: M) -> Result<T, E>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message<Result = (Result<T, E>, Timing)> + Send + 'static,
        T: Send + 'static,
        E: From<ActorError> + Send + 'static,
    {
        let (out, timing) = self
            .addr
            .send(msg)
            .await
            .map_err(|e| ActorError::from_mailbox(self.name, e))?;
        trace::record(self.name, operation, timing);
        out
    }
}

/// The one restart behaviour, for an actor whose `self.shared.gate` is its
/// family's gate: `supervise::serve` catches a panic and sends `Restart`;
/// the actor stops, and its `Supervisor` starts a fresh one (actix restarts
/// an actor that stops, not one that panics). The gate counts the restart.
#[macro_export]
macro_rules! restarts_on_panic {
    ($actor:ty, $name:literal) => {
        impl ::actix::Supervised for $actor {
            fn restarting(&mut self, _: &mut <Self as ::actix::Actor>::Context) {
                ::tracing::warn!(actor = $name, "actor restarting");
                self.shared.gate.stats().record_restart();
            }
        }

        impl ::actix::Handler<$crate::supervise::Restart> for $actor {
            type Result = ();

            fn handle(&mut self, _: $crate::supervise::Restart, ctx: &mut Self::Context) {
                ::actix::ActorContext::stop(ctx);
            }
        }
    };
}
