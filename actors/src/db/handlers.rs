use actix::{AsyncContext, Handler, ResponseFuture};

use super::{Checkout, DbActor, DbError, DbOperation, PgPool, Run, DOWN};
use crate::gate::{Gate, Timing};
use crate::supervise::{serve, ServeError};

impl ServeError for DbError {
    fn timed_out() -> Self {
        DbError::Timeout
    }
}

/// Runs one operation on a connection from the primary (or, for reads, the
/// replica) pool. The work runs as its own task on this arbiter, so many
/// operations are in flight at once.
impl<O: DbOperation> Handler<Run<O>> for DbActor {
    type Result = ResponseFuture<(Result<O::Output, DbError>, Timing)>;

    fn handle(&mut self, msg: Run<O>, ctx: &mut Self::Context) -> Self::Result {
        let Run {
            op,
            ticket,
            primary,
            patient,
            arrived,
        } = msg;
        // A clone: a live resize swaps the pools, and this operation finishes
        // on the one it started with.
        let (pool, on_primary) = self.shared.pool_for(O::READ_ONLY && !primary);
        let shared = std::sync::Arc::clone(&self.shared);
        let work = async move {
            // Decided when the connection is asked for, not when the
            // message arrived.
            let checkout = shared.checkout(&pool, on_primary, patient, arrived);
            let waiting = shared.queue(on_primary).wait();
            let mut conn = checkout_within(&pool, checkout, shared.gate()).await?;
            let _holding = waiting.holding();
            let out = op.run(&mut conn).await;
            // The primary answered a real query: health need not wait for
            // its own probe, which a saturated box may delay.
            if on_primary && out.is_ok() {
                shared.health().saw_answer();
            }
            out
        };
        let deadline = self.shared.query_timeout;
        serve(
            "db",
            O::NAME,
            ticket,
            deadline,
            ctx.address().recipient(),
            work,
        )
    }
}

/// A pooled connection within the checkout's wait. A queue longer than the
/// target sheds the operation (`Overloaded`, 503 in milliseconds) instead of
/// letting it wait `connection_timeout` for a 503 anyway.
async fn checkout_within<'p>(
    pool: &'p PgPool,
    checkout: Checkout,
    gate: &Gate,
) -> Result<bb8::PooledConnection<'p, super::PgManager>, DbError> {
    let (wait, missed): (_, fn(&Gate) -> DbError) = match checkout {
        Checkout::Queue(wait) => (wait, |gate| {
            crate::lograte::DB_SHED.warn("no connection free within the queue target; shed");
            gate.shed().into()
        }),
        Checkout::Connect(wait) => (wait, |_| bb8::RunError::TimedOut.into()),
        // An idle connection is taken on the first poll, before the deadline.
        Checkout::Down => (std::time::Duration::ZERO, |_| {
            DbError::Unavailable(DOWN.into())
        }),
        Checkout::Shed => {
            crate::lograte::DB_SHED.warn("the connection queue is past half its target; shed");
            return Err(gate.shed().into());
        }
    };
    match tokio::time::timeout(wait, pool.get()).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(missed(gate)),
    }
}
