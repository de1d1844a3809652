use std::sync::Arc;

use actix::{ActorContext, AsyncContext, Handler, ResponseFuture};
use redis::AsyncCommands;

use super::{CacheActor, CacheError, Delete, Get, Set};
use crate::gate::Timing;
use crate::supervise::{serve, Restart, ServeError};

impl ServeError for CacheError {
    fn timed_out() -> Self {
        CacheError::Timeout
    }
}

type Reply<T> = ResponseFuture<(Result<T, CacheError>, Timing)>;

impl CacheActor {
    /// Common body: a pooled connection, the command, all within the cache's
    /// tight deadline (a slow Redis must not slow requests down).
    fn run<T, F, Fut>(
        &self,
        op: &'static str,
        ticket: crate::gate::Ticket,
        ctx: &mut <Self as actix::Actor>::Context,
        f: F,
    ) -> Reply<T>
    where
        T: 'static,
        F: FnOnce(redis::aio::MultiplexedConnection) -> Fut + 'static,
        Fut: std::future::Future<Output = Result<T, CacheError>>,
    {
        let shared = Arc::clone(&self.shared);
        let work = async move {
            let pool = shared.pool.as_ref().ok_or(CacheError::Pool)?;
            let conn = pool.get().await?.clone();
            f(conn).await
        };
        serve(
            "cache",
            op,
            ticket,
            self.shared.op_timeout,
            ctx.address().recipient(),
            work,
        )
    }
}

impl Handler<Get> for CacheActor {
    type Result = Reply<Option<Vec<u8>>>;

    fn handle(&mut self, msg: Get, ctx: &mut Self::Context) -> Self::Result {
        let Get { key, ticket } = msg;
        self.run("get", ticket, ctx, move |mut c| async move {
            Ok(c.get::<_, Option<Vec<u8>>>(key).await?)
        })
    }
}

impl Handler<Set> for CacheActor {
    type Result = Reply<()>;

    fn handle(&mut self, msg: Set, ctx: &mut Self::Context) -> Self::Result {
        let Set {
            key,
            value,
            ttl,
            ticket,
        } = msg;
        self.run("set", ticket, ctx, move |mut c| async move {
            let secs = ttl.as_secs().max(1);
            Ok(c.set_ex::<_, _, ()>(key, value, secs).await?)
        })
    }
}

impl Handler<Delete> for CacheActor {
    type Result = Reply<()>;

    fn handle(&mut self, msg: Delete, ctx: &mut Self::Context) -> Self::Result {
        let Delete { keys, ticket } = msg;
        self.run("delete", ticket, ctx, move |mut c| async move {
            Ok(c.del::<_, ()>(keys).await?)
        })
    }
}

impl Handler<Restart> for CacheActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
