//! Open client connections: the cap (`api.max_connections`, below the file
//! descriptor limit) and the gauge that shows it. Without a cap, ~20,000
//! idle sockets took every descriptor (EMFILE) and health probes failed.
//!
//! At the cap, a new connection is not left waiting in the kernel's queue
//! behind sockets that never send anything: the oldest connection that has
//! not sent a request for `silent_for` is closed to make room (as nginx
//! reuses idle connections when `worker_connections` run out). To close it
//! from outside actix, each connection keeps a duplicate of its socket until
//! its first request arrives; a duplicate is never kept longer, so the
//! descriptor budget allows for at most two per connection.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Open client connections against the cap in effect.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicI64,
    peak: AtomicI64,
    max: AtomicUsize,
    evicted: AtomicU64,
    /// Evicted but not closed by actix yet.
    closing: AtomicI64,
    /// How long a connection may stay silent before it can be evicted.
    silent_for: Mutex<Duration>,
    /// Connections that have not sent a request yet, oldest first.
    silent: Mutex<VecDeque<Arc<Silent>>>,
}

/// Open client connections (`api.max_connections`).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct ConnectionsSnapshot {
    /// Client connections open now.
    pub open: i64,
    /// The most open at once since start.
    pub peak: i64,
    /// The cap in effect (after the file-descriptor limit).
    pub max: usize,
    /// Connections closed at the cap because they had sent nothing.
    pub evicted: u64,
}

/// A connection that has sent nothing yet, and a way to close it.
#[derive(Debug)]
pub struct Silent {
    opened: Instant,
    spoke: AtomicBool,
    evicted: AtomicBool,
    socket: Mutex<Option<socket2::Socket>>,
}

impl Silent {
    /// Its first request arrived (or it closed): never evicted, and the
    /// duplicate descriptor goes now.
    pub fn spoke(&self) {
        if !self.spoke.swap(true, Ordering::AcqRel) {
            self.socket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
    }
}

impl Connections {
    pub fn set_max(&self, max: usize, silent_for: Duration) {
        self.max.store(max, Ordering::Relaxed);
        *self
            .silent_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = silent_for;
        metrics::gauge!("health_agent_http_connections_max").set(max as f64);
    }

    pub fn snapshot(&self) -> ConnectionsSnapshot {
        ConnectionsSnapshot {
            open: self.open.load(Ordering::Relaxed).max(0),
            peak: self.peak.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// Counts a connection until the returned guard is dropped (actix-web
    /// drops a connection's extensions, where the guard lives, when it
    /// closes). `socket` (a duplicate of the connection's) lets it be
    /// evicted while it has sent nothing; at the cap the oldest such
    /// connections are closed to make room.
    pub fn opened(self: &Arc<Self>, socket: Option<socket2::Socket>) -> OpenConnection {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        metrics::gauge!("health_agent_http_connections_open").increment(1.0);
        let silent = Arc::new(Silent {
            opened: Instant::now(),
            spoke: AtomicBool::new(socket.is_none()),
            evicted: AtomicBool::new(false),
            socket: Mutex::new(socket),
        });
        let over = self.over_the_cap();
        let mut queue = self.silent.lock().unwrap_or_else(PoisonError::into_inner);
        if over > 0 {
            self.evict(&mut queue, over);
        }
        if !silent.spoke.load(Ordering::Acquire) {
            queue.push_back(Arc::clone(&silent));
        }
        OpenConnection {
            connections: Arc::clone(self),
            silent,
        }
    }

    /// Evicts silent connections over the cap every tick: once actix holds
    /// as many as it may accept, no new connection arrives to trigger it.
    /// Ends when the server's `Connections` are dropped.
    pub fn spawn_evictor(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { break };
                let over = me.over_the_cap();
                if over > 0 {
                    let mut queue = me.silent.lock().unwrap_or_else(PoisonError::into_inner);
                    me.evict(&mut queue, over);
                }
            }
        });
    }

    /// Open connections beyond the cap, not counting those being closed.
    fn over_the_cap(&self) -> usize {
        let open = self.open.load(Ordering::Relaxed) - self.closing.load(Ordering::Relaxed);
        usize::try_from(open)
            .unwrap_or(0)
            .saturating_sub(self.max.load(Ordering::Relaxed))
    }

    /// Closes up to `n` of the oldest connections silent for long enough.
    fn evict(&self, queue: &mut VecDeque<Arc<Silent>>, n: usize) {
        let silent_for = *self
            .silent_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut closed = 0;
        while closed < n {
            let Some(oldest) = queue.pop_front() else {
                break;
            };
            if oldest.spoke.load(Ordering::Acquire) {
                continue;
            }
            // Oldest first: if this one is too young, so are the rest.
            if oldest.opened.elapsed() < silent_for {
                queue.push_front(oldest);
                break;
            }
            // Marked under the socket's lock: a connection closing meanwhile
            // either took the socket first or sees the mark when it drops.
            let mut socket = oldest.socket.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = socket.take() {
                oldest.evicted.store(true, Ordering::Release);
                self.closing.fetch_add(1, Ordering::Relaxed);
                drop(socket);
                // actix reads end-of-stream on it and closes the connection.
                let _ = s.shutdown(std::net::Shutdown::Both);
                closed += 1;
            }
        }
        if closed > 0 {
            self.evicted.fetch_add(closed as u64, Ordering::Relaxed);
            metrics::counter!("health_agent_http_connections_evicted_total")
                .increment(closed as u64);
        }
    }
}

/// Held in a connection's extensions while it is open.
pub struct OpenConnection {
    connections: Arc<Connections>,
    silent: Arc<Silent>,
}

impl OpenConnection {
    /// Called for each request on the connection (cheap after the first).
    pub fn spoke(&self) {
        self.silent.spoke();
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.silent.spoke();
        if self.silent.evicted.load(Ordering::Acquire) {
            self.connections.closing.fetch_sub(1, Ordering::Relaxed);
        }
        self.connections.open.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("health_agent_http_connections_open").decrement(1.0);
    }
}

/// A duplicate of an accepted connection's socket, from `on_connect`'s
/// view of it; `None` when it is not a TCP stream or cannot be duplicated.
pub fn duplicate(io: &dyn std::any::Any) -> Option<socket2::Socket> {
    let stream = io.downcast_ref::<actix_web::rt::net::TcpStream>()?;
    socket2::SockRef::from(stream).try_clone().ok()
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (the default soft limit
/// is often 1,024 while the hard one allows far more) and returns the limit
/// in effect; `None` where it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            if now != soft {
                tracing::info!(from = soft, to = now, hard, "raised the open-file limit");
            }
            Some(now)
        }
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "could not raise the open-file limit");
            Some(soft)
        }
    }
}

/// The connection cap that fits under `fd_limit` with `reserved`
/// descriptors left for pools, listeners and files: actix may accept up to
/// `accept_limit(cap)`, two descriptors each (its socket and, until it
/// speaks, the duplicate that lets it be evicted).
pub fn cap(configured: usize, fd_limit: Option<u64>, reserved: u64) -> usize {
    match fd_limit {
        Some(limit) => {
            let per_connection = (limit.saturating_sub(reserved) / 2).saturating_sub(16);
            let room = (per_connection * 8 / 9).max(1);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

/// What actix itself may hold (it stops accepting there): some room above
/// the cap, so a new connection is accepted and can evict a silent one.
pub fn accept_limit(cap: usize) -> usize {
    cap + (cap / 8).clamp(16, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_under_the_descriptor_limit() {
        assert_eq!(cap(8_000, Some(20_000), 600), 8_000);
        assert_eq!(cap(25_000, Some(20_000), 600), 8_608);
        // Two descriptors for each connection actix may accept fit.
        assert!(2 * accept_limit(8_608) <= 20_000 - 600);
        assert_eq!(cap(25_000, Some(100), 600), 1);
        assert_eq!(cap(25_000, None, 600), 25_000);
    }

    #[test]
    fn a_guard_counts_until_dropped() {
        let c = Arc::new(Connections::default());
        let a = c.opened(None);
        let b = c.opened(None);
        drop(a);
        let s = c.snapshot();
        assert_eq!((s.open, s.peak), (1, 2));
        drop(b);
        assert_eq!(c.snapshot().open, 0);
    }

    /// A connection: its client side, its server side (what actix holds)
    /// and a duplicate of that (what `opened` gets).
    fn pair() -> (std::net::TcpStream, std::net::TcpStream, socket2::Socket) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let dup = socket2::SockRef::from(&server).try_clone().unwrap();
        (client, server, dup)
    }

    fn closed(client: &mut std::net::TcpStream) -> bool {
        use std::io::{ErrorKind, Read};
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match client.read(&mut [0u8; 1]) {
            Ok(n) => n == 0,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        }
    }

    #[test]
    fn at_the_cap_the_oldest_silent_connection_is_closed_not_one_that_spoke() {
        let c = Arc::new(Connections::default());
        c.set_max(2, Duration::ZERO);
        let (mut talker, _t, s1) = pair();
        let (mut quiet, _q, s2) = pair();
        let (mut newest, _n, s3) = pair();
        let first = c.opened(Some(s1));
        first.spoke();
        let _second = c.opened(Some(s2));
        // Over the cap: the silent one goes, the one that spoke stays.
        let _third = c.opened(Some(s3));
        assert!(closed(&mut quiet), "the silent connection was not closed");
        assert!(!closed(&mut talker), "a connection that spoke was closed");
        assert!(!closed(&mut newest), "the new connection was closed");
        assert_eq!(c.snapshot().evicted, 1);
    }

    #[test]
    fn a_connection_silent_for_less_than_the_grace_is_kept() {
        let c = Arc::new(Connections::default());
        c.set_max(1, Duration::from_secs(60));
        let (mut young, _y, s1) = pair();
        let (_other, _o, s2) = pair();
        let _a = c.opened(Some(s1));
        let _b = c.opened(Some(s2));
        assert!(!closed(&mut young));
        assert_eq!(c.snapshot().evicted, 0);
    }
}
