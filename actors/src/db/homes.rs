//! Which threads drive the pool's connections.
//!
//! tokio-postgres drives a connection from a task spawned where it was
//! opened, and actix arbiters are single-threaded runtimes. bb8 opens the
//! first connections (`min_idle`, its reaper) on the start-up thread, which
//! otherwise sleeps: every query on them woke it and then the worker that
//! asked, two cross-thread hops. So the HTTP workers register here as homes
//! and each connection is opened on one of them, in turn; a query from that
//! worker stays on its thread, one from the other crosses once.
//!
//! The pool stays one pool: a pool per worker (tried) halves each worker's
//! share, and a burst then found its share full and shed far more.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;

use actix::ArbiterHandle;

#[derive(Debug, Default)]
pub struct Homes {
    arbiters: Mutex<Vec<(ThreadId, ArbiterHandle)>>,
    /// `arbiters` is not empty: read on every connection's return.
    any: AtomicBool,
    next: AtomicUsize,
}

impl Homes {
    /// The current arbiter becomes a home (once: the app factory runs per
    /// worker and per bind address).
    pub fn add_here(&self) {
        let here = std::thread::current().id();
        let mut homes = self.lock();
        if !homes.iter().any(|(t, _)| *t == here) {
            homes.push((here, actix::Arbiter::current()));
        }
        self.any.store(true, Ordering::Relaxed);
    }

    /// Whether any thread has registered: until then connections open where
    /// they are asked for.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// Runs `open` on the next home, in turn; `None` when there is no home
    /// or it has stopped (shutdown), and the caller opens it itself.
    pub async fn open_on<T: Send + 'static>(
        &self,
        open: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let home = {
            let homes = self.lock();
            if homes.is_empty() {
                return None;
            }
            homes[self.next.fetch_add(1, Ordering::Relaxed) % homes.len()]
                .1
                .clone()
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !home.spawn(async move {
            let _ = tx.send(open.await);
        }) {
            return None;
        }
        rx.await.ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(ThreadId, ArbiterHandle)>> {
        self.arbiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn thread_of(arbiter: &ArbiterHandle) -> ThreadId {
        let (tx, rx) = tokio::sync::oneshot::channel();
        arbiter.spawn(async move {
            let _ = tx.send(std::thread::current().id());
        });
        rx.await.unwrap()
    }

    async fn opened_on() -> ThreadId {
        std::thread::current().id()
    }

    #[actix::test]
    async fn work_opens_on_the_homes_in_turn_and_here_without_one() {
        let homes = std::sync::Arc::new(Homes::default());
        assert_eq!(homes.open_on(opened_on()).await, None);

        let (a, b) = (actix::Arbiter::new(), actix::Arbiter::new());
        for arbiter in [&a, &b] {
            let homes = std::sync::Arc::clone(&homes);
            let (tx, rx) = tokio::sync::oneshot::channel();
            arbiter.spawn(async move {
                homes.add_here();
                homes.add_here();
                let _ = tx.send(());
            });
            rx.await.unwrap();
        }
        let (ta, tb) = (thread_of(&a.handle()).await, thread_of(&b.handle()).await);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(homes.open_on(opened_on()).await.unwrap());
        }
        assert_eq!(seen, [ta, tb, ta, tb]);

        // A stopped home (shutdown): the caller opens it itself.
        a.stop();
        a.join().unwrap();
        b.stop();
        b.join().unwrap();
        assert_eq!(homes.open_on(opened_on()).await, None);
    }
}
