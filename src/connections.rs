//! Open client connections: the cap (`api.max_connections`, below the file
//! descriptor limit) and the gauge that shows it. Without a cap, ~20,000
//! idle sockets took every descriptor (EMFILE) and health probes failed.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// Open client connections against the cap in effect.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicI64,
    peak: AtomicI64,
    max: AtomicUsize,
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
}

impl Connections {
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
        metrics::gauge!("health_agent_http_connections_max").set(max as f64);
    }

    pub fn snapshot(&self) -> ConnectionsSnapshot {
        ConnectionsSnapshot {
            open: self.open.load(Ordering::Relaxed).max(0),
            peak: self.peak.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
        }
    }

    /// Counts a connection until the returned guard is dropped (actix-web
    /// drops a connection's extensions, where the guard lives, when it closes).
    pub fn opened(self: &Arc<Self>) -> OpenConnection {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        metrics::gauge!("health_agent_http_connections_open").increment(1.0);
        OpenConnection(Arc::clone(self))
    }
}

/// Held in a connection's extensions while it is open.
pub struct OpenConnection(Arc<Connections>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("health_agent_http_connections_open").decrement(1.0);
    }
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
/// descriptors left for pools, listeners and files.
pub fn cap(configured: usize, fd_limit: Option<u64>, reserved: u64) -> usize {
    match fd_limit {
        Some(limit) => {
            let room = limit.saturating_sub(reserved).max(1);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_under_the_descriptor_limit() {
        assert_eq!(cap(10_000, Some(20_000), 600), 10_000);
        assert_eq!(cap(25_000, Some(20_000), 600), 19_400);
        assert_eq!(cap(25_000, Some(100), 600), 1);
        assert_eq!(cap(25_000, None, 600), 25_000);
    }

    #[test]
    fn a_guard_counts_until_dropped() {
        let c = Arc::new(Connections::default());
        let a = c.opened();
        let b = c.opened();
        drop(a);
        let s = c.snapshot();
        assert_eq!((s.open, s.peak), (1, 2));
        drop(b);
        assert_eq!(c.snapshot().open, 0);
    }
}
