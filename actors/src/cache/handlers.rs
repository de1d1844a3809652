use std::future::Future;
use std::sync::Arc;

use actix::{ActorContext, AsyncContext, Handler, ResponseFuture};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use super::{CacheActor, CacheError, Delete, Get, Replace, Set, SetWhen};
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
        let Get {
            key,
            announce,
            ticket,
        } = msg;
        self.run("get", ticket, ctx, move |mut c| async move {
            match announce {
                None => c.get::<_, Option<Vec<u8>>>(key).await,
                Some(channel) => {
                    let (value,): (Option<Vec<u8>>,) = redis::pipe()
                        .get(&key)
                        .publish(channel, &key)
                        .ignore()
                        .query_async(&mut c)
                        .await?;
                    Ok(value)
                }
            }
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
            when,
            announce,
            ticket,
        } = msg;
        let px = ttl.as_millis().max(1) as u64;
        self.run("set", ticket, ctx, move |mut c| async move {
            let mut pipe = redis::pipe();
            match when {
                SetWhen::Always | SetWhen::Absent => {
                    let mut set = redis::cmd("SET");
                    set.arg(&key).arg(value).arg("PX").arg(px);
                    if when == SetWhen::Absent {
                        set.arg("NX");
                    }
                    pipe.add_command(set).ignore();
                }
                SetWhen::Holds(expected) => {
                    pipe.cmd("EVAL")
                        .arg(SET_IF_HOLDS)
                        .arg(1)
                        .arg(&key)
                        .arg(expected)
                        .arg(value)
                        .arg(px)
                        .ignore();
                }
            }
            if let Some(channel) = announce {
                pipe.publish(channel, &key).ignore();
            }
            pipe.query_async::<()>(&mut c).await
        })
    }
}

/// KEYS[1] = ARGV[2] (for ARGV[3] ms) only while it holds ARGV[1].
const SET_IF_HOLDS: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return false";

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

impl Handler<Replace> for CacheActor {
    type Result = Reply<()>;

    fn handle(&mut self, msg: Replace, ctx: &mut Self::Context) -> Self::Result {
        let Replace {
            entries,
            channel,
            ticket,
        } = msg;
        self.run("replace", ticket, ctx, move |mut c| async move {
            let mut pipe = redis::pipe();
            let mut keys = Vec::with_capacity(entries.len());
            for (key, value, ttl) in entries {
                match value {
                    Some(v) => pipe
                        .pset_ex(&key, v, ttl.as_millis().max(1) as u64)
                        .ignore(),
                    None => pipe.del(&key).ignore(),
                };
                keys.push(key);
            }
            pipe.publish(channel, keys.join("\n"))
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
