//! bb8-redis's manager never reports a connection broken (`has_broken` is
//! always false) and we skip the PING on checkout, so a connection that died
//! with Redis would stay in the pool forever. This wrapper lets the caller
//! flag a connection after an I/O error; bb8 then drops it on return and the
//! next checkout dials a fresh one: the cache reconnects by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;
use redis::RedisError;

#[derive(Clone)]
pub struct TrackedConnection {
    pub conn: MultiplexedConnection,
    pub broken: Arc<AtomicBool>,
}

impl TrackedConnection {
    /// Marks the connection for disposal when `e` means the socket is gone.
    pub fn note_error(&self, e: &RedisError) {
        if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            self.broken.store(true, Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Debug)]
pub struct TrackedManager(pub RedisConnectionManager);

impl bb8::ManageConnection for TrackedManager {
    type Connection = TrackedConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<TrackedConnection, RedisError> {
        Ok(TrackedConnection {
            conn: self.0.connect().await?,
            broken: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn is_valid(&self, c: &mut TrackedConnection) -> Result<(), RedisError> {
        self.0.is_valid(&mut c.conn).await
    }

    fn has_broken(&self, c: &mut TrackedConnection) -> bool {
        c.broken.load(Ordering::Relaxed)
    }
}
