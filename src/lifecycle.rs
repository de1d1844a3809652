//! Stopping without failing a request: SIGTERM (or SIGINT) makes `/readyz`
//! answer 503 while everything is still served for `api.drain_delay_ms` (a
//! balancer that polls readiness stops sending), then shuts the listening
//! socket (new connections are refused, which nginx retries elsewhere even
//! for a POST) and serves the connections it has, each closed after its next
//! response, and stops once none is open (a balancer drops its idle pooled
//! ones itself), within `api.shutdown_timeout_secs`; whatever still runs
//! shortly before that is answered 503 (`middleware::drain`). A second
//! signal stops at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Lifecycle {
    draining: AtomicBool,
    /// The listener is closed: responses close their connections.
    closing: AtomicBool,
    /// Turns true when requests still running must be answered now.
    deadline: watch::Sender<bool>,
    /// Open client connections (see [`Connection`]).
    open: Arc<AtomicUsize>,
}

/// Kept in each connection's extensions: counts it open until it closes.
pub struct Connection(Arc<AtomicUsize>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            draining: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            deadline: watch::channel(false).0,
            open: Arc::default(),
        }
    }
}

impl Lifecycle {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Called for each accepted connection (`HttpServer::on_connect`).
    pub fn connected(&self) -> Connection {
        self.open.fetch_add(1, Ordering::AcqRel);
        Connection(Arc::clone(&self.open))
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    pub(crate) fn deadline(&self) -> watch::Receiver<bool> {
        self.deadline.subscribe()
    }
}

/// How long, after the listener closes, open connections get to close on
/// their own: longer than nginx's upstream `keepalive_timeout` (4 s).
const IDLE_GRACE: Duration = Duration::from_secs(5);

/// Starts a graceful stop of a built application.
#[derive(Clone)]
pub struct Shutdown {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) server: ServerHandle,
    /// A duplicate of the server's listening socket.
    pub(crate) listener: Arc<std::net::TcpListener>,
    pub(crate) drain_delay: Duration,
    pub(crate) timeout: Duration,
}

impl Shutdown {
    /// Drain, stop accepting, answer what is left. Returns at once, draining
    /// (the server's future ends when the stop is done).
    pub fn begin(&self) {
        if self.lifecycle.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!(
            drain_delay_ms = self.drain_delay.as_millis() as u64,
            "stopping: /readyz answers 503, requests are still served"
        );
        // From now on every answer closes its connection, so by the end of
        // the drain a balancer holds no pooled connection to this instance
        // that it could send a POST on just as the listener goes.
        self.lifecycle.closing.store(true, Ordering::Release);
        let me = self.clone();
        actix_web::rt::spawn(async move {
            tokio::time::sleep(me.drain_delay).await;
            // Refuse new connections (nginx retries a refused one elsewhere,
            // a POST too) but keep serving the open ones until they close:
            // a balancer may still send on a pooled one.
            // Stop actix's accept loop first: polling the shut socket, it
            // logged an ERROR ("Invalid argument") on every stop.
            me.server.pause().await;
            if let Err(e) = socket2::SockRef::from(&*me.listener).shutdown(std::net::Shutdown::Both)
            {
                tracing::warn!(error = %e, "cannot close the listener");
            }
            tracing::info!(
                open_connections = me.lifecycle.open_connections(),
                "stopping: new connections refused; each open one closes after its next response"
            );
            // Answer what still runs before the timeout.
            let answer_by = me
                .timeout
                .saturating_sub((me.timeout / 2).min(Duration::from_secs(1)));
            let lifecycle = Arc::clone(&me.lifecycle);
            actix_web::rt::spawn(async move {
                tokio::time::sleep(answer_by).await;
                lifecycle.deadline.send_replace(true);
            });
            // The balancer's pooled connections close after their next
            // response or when it drops them idle (nginx: keepalive_timeout,
            // 4 s). Other clients may keep idle ones for minutes: after
            // IDLE_GRACE actix's stop closes what is idle and lets what runs
            // finish.
            let started = tokio::time::Instant::now();
            let grace = me.timeout.min(IDLE_GRACE);
            while me.lifecycle.open_connections() > 0 && started.elapsed() < grace {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tracing::info!(
                open_connections = me.lifecycle.open_connections(),
                "stopping: closing the connections left"
            );
            me.server.stop(true).await;
        });
    }

    /// Stops at once, dropping what runs.
    pub async fn now(&self) {
        self.lifecycle.deadline.send_replace(true);
        self.server.stop(false).await;
    }

    /// SIGTERM and SIGINT start a graceful stop; a second one stops at once.
    pub(crate) fn on_signals(self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        actix_web::rt::spawn(async move {
            let mut first = true;
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if first {
                    first = false;
                    self.begin();
                } else {
                    tracing::warn!("second signal: stopping now");
                    self.now().await;
                    break;
                }
            }
        });
        Ok(())
    }
}
