use std::future::Future;

use actix::{AsyncContext, Handler, ResponseFuture};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use super::{
    Announce, CacheActor, CacheError, Delete, Get, RateDecision, RateLimit, Recheck, Replace, Set,
    SetWhen,
};
use crate::gate::{Ticket, Timing};
use crate::supervise::{serve, ServeError};

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
        self.within(self.shared.op_timeout, op, ticket, ctx, self.command(f))
    }

    /// The command on a pooled connection, without a deadline.
    fn command<T, F, Fut>(&self, f: F) -> impl Future<Output = Result<T, CacheError>> + 'static
    where
        F: FnOnce(MultiplexedConnection) -> Fut + 'static,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let pool = self.pool.clone();
        async move {
            let pool = pool.ok_or(CacheError::Disabled)?;
            let tracked = pool.get().await?.clone();
            f(tracked.conn.clone()).await.map_err(|e| {
                tracked.note_error(&e);
                CacheError::from(e)
            })
        }
    }

    fn within<T: 'static>(
        &self,
        deadline: std::time::Duration,
        op: &'static str,
        ticket: Ticket,
        ctx: &mut <Self as actix::Actor>::Context,
        work: impl Future<Output = Result<T, CacheError>> + 'static,
    ) -> Reply<T> {
        serve(
            "cache",
            op,
            ticket,
            deadline,
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

impl Handler<Recheck> for CacheActor {
    type Result = Reply<Vec<Option<Vec<u8>>>>;

    fn handle(&mut self, msg: Recheck, ctx: &mut Self::Context) -> Self::Result {
        let Recheck {
            keys,
            channel,
            ticket,
        } = msg;
        self.run("recheck", ticket, ctx, move |mut c| async move {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.get(key);
            }
            pipe.publish(channel, keys.join("\n"))
                .ignore()
                .query_async(&mut c)
                .await
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

/// GCRA on Redis' clock (one clock for every instance). The key holds the
/// "theoretical arrival time" in µs; a request is allowed while it is at most
/// `capacity` intervals ahead of now. ARGV[3] requests admitted elsewhere
/// (an instance deciding alone while Redis was away) are charged first, at
/// most a full bucket. Returns {allowed, remaining, retry_after_us,
/// reset_us}. Redis replicates scripts by effects, so TIME inside is fine.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
tat = math.min(tat + interval * tonumber(ARGV[3]), now + window)
local new_tat = tat + interval
if new_tat - now > window then
  return {0, math.floor((window - (tat - now)) / interval), new_tat - now - window, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((window - (new_tat - now)) / interval), 0, new_tat - now}
";

/// How long a rate-limit script may still run after its reply missed the
/// deadline. Past this, it is taken as never run (and its request as owed).
const SETTLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

impl Handler<RateLimit> for CacheActor {
    type Result = Reply<RateDecision>;

    fn handle(&mut self, msg: RateLimit, ctx: &mut Self::Context) -> Self::Result {
        let RateLimit {
            key,
            interval_us,
            capacity,
            owed,
            ran,
            ticket,
        } = msg;
        let script = self.command(move |mut c| async move {
            let (allowed, remaining, retry_us, reset_us): (i64, i64, i64, i64) = redis::cmd("EVAL")
                .arg(GCRA)
                .arg(1)
                .arg(&key)
                .arg(interval_us)
                .arg(capacity)
                .arg(owed)
                .query_async(&mut c)
                .await?;
            let us = |v: i64| std::time::Duration::from_micros(v.max(0) as u64);
            Ok(RateDecision {
                allowed: allowed == 1,
                remaining: remaining.clamp(0, i64::from(u32::MAX)) as u32,
                retry_after: us(retry_us),
                reset: us(reset_us),
            })
        });
        // A reply that misses the deadline is not cancelled: the script may
        // still charge the bucket, and the caller must learn whether it did,
        // or it would charge the request again as a debt. Only then is the
        // rest of the call moved to a task of its own.
        let op_timeout = self.shared.op_timeout;
        let work = async move {
            let mut script = Box::pin(script);
            match tokio::time::timeout(op_timeout, script.as_mut()).await {
                Ok(out) => out,
                Err(_) => {
                    actix::spawn(async move {
                        let done = tokio::time::timeout(SETTLE_WITHIN, script).await;
                        let _ = ran.send(matches!(done, Ok(Ok(_))));
                    });
                    Err(CacheError::Timeout)
                }
            }
        };
        // `serve`'s own deadline only backs up the one above.
        self.within(op_timeout * 2, "rate_limit", ticket, ctx, work)
    }
}

impl Handler<Announce> for CacheActor {
    type Result = Reply<u64>;

    fn handle(&mut self, msg: Announce, ctx: &mut Self::Context) -> Self::Result {
        let Announce {
            key,
            instance,
            ttl,
            ticket,
        } = msg;
        self.run("announce", ticket, ctx, move |mut c| async move {
            redis::cmd("EVAL")
                .arg(ANNOUNCE)
                .arg(1)
                .arg(&key)
                .arg(&instance)
                .arg(ttl.as_millis() as u64)
                .query_async(&mut c)
                .await
        })
    }
}

/// ZADD this instance at Redis' now (ms), drop members older than ARGV[2]
/// ms, return how many are left.
const ANNOUNCE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
";
