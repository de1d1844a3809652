use std::future::Future;
use std::sync::Arc;

use actix::{ActorContext, AsyncContext, Handler, ResponseFuture};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use super::{CacheActor, CacheError, Delete, Get, Set};
use crate::gate::{Ticket, Timing};
use crate::supervise::{serve, Restart, ServeError};

impl ServeError for CacheError {
    fn timed_out() -> Self {
        CacheError::Timeout
    }
}

type Reply<T> = ResponseFuture<(Result<T, CacheError>, Timing)>;

impl CacheActor {
    /// Common body: a pooled connection and the command, within the cache's
    /// tight deadline (a slow Redis must not slow requests down). A
    /// connection that fails with an I/O error is flagged so the pool drops it.
    fn run<T, F, Fut>(
        &self,
        op: &'static str,
        ticket: Ticket,
        ctx: &mut <Self as actix::Actor>::Context,
        f: F,
    ) -> Reply<T>
    where
        T: 'static,
        F: FnOnce(MultiplexedConnection) -> Fut + 'static,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let shared = Arc::clone(&self.shared);
        let work = async move {
            let pool = shared.pool.as_ref().ok_or(CacheError::Disabled)?;
            let tracked = pool.get().await?.clone();
            f(tracked.conn.clone()).await.map_err(|e| {
                tracked.note_error(&e);
                CacheError::from(e)
            })
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
            c.get::<_, Option<Vec<u8>>>(key).await
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
            c.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1)).await
        })
    }
}

impl Handler<Delete> for CacheActor {
    type Result = Reply<()>;

    fn handle(&mut self, msg: Delete, ctx: &mut Self::Context) -> Self::Result {
        let Delete {
            keys,
            channel,
            ticket,
        } = msg;
        self.run("delete", ticket, ctx, move |mut c| async move {
            redis::pipe()
                .del(&keys)
                .ignore()
                .publish(channel, keys.join("\n"))
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
    }
}

impl Handler<Restart> for CacheActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
