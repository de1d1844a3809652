//! Stopping without failing a request: SIGTERM (or SIGINT) makes `/readyz`
//! answer 503 while everything is still served for `api.drain_delay_ms`,
//! then closes the listener and gives in-flight requests
//! `api.shutdown_timeout_secs`; whatever still runs shortly before that is
//! answered 503 (`middleware::drain`). A second signal stops at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Lifecycle {
    draining: AtomicBool,
    /// Turns true when requests still running must be answered now.
    deadline: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            draining: AtomicBool::new(false),
            deadline: watch::channel(false).0,
        }
    }
}

impl Lifecycle {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn deadline(&self) -> watch::Receiver<bool> {
        self.deadline.subscribe()
    }
}

/// Starts a graceful stop of a built application.
#[derive(Clone)]
pub struct Shutdown {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) server: ServerHandle,
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
        let me = self.clone();
        actix_web::rt::spawn(async move {
            tokio::time::sleep(me.drain_delay).await;
            tracing::info!("stopping: listener closed, finishing in-flight requests");
            let stopping = me.server.stop(true);
            // Answer before actix closes the sockets at its own timeout.
            let answer_by = me
                .timeout
                .saturating_sub((me.timeout / 2).min(Duration::from_secs(1)));
            actix_web::rt::spawn(async move {
                tokio::time::sleep(answer_by).await;
                me.lifecycle.deadline.send_replace(true);
            });
            stopping.await;
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
