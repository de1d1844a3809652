use actix::{ActorContext, AsyncContext, Handler, ResponseFuture};

use super::{DbActor, DbError, DbOperation, Run};
use crate::gate::Timing;
use crate::supervise::{serve, Restart, ServeError};

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
        } = msg;
        // A clone: a live resize swaps the pools, and this operation finishes
        // on the one it started with.
        let (pool, on_primary) = self.shared.pool_for(O::READ_ONLY && !primary);
        let health = on_primary.then(|| std::sync::Arc::clone(self.shared.health()));
        let work = async move {
            let mut conn = pool.get().await?;
            let out = op.run(&mut conn).await;
            // The primary answered a real query: health need not wait for
            // its own probe, which a saturated box may delay.
            if let Some(h) = health {
                if out.is_ok() {
                    h.saw_answer();
                }
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

impl Handler<Restart> for DbActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
