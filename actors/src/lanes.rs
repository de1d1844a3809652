//! Connections driven by the thread that uses them.
//!
//! tokio-postgres and redis drive each connection from a task spawned where
//! it was opened, and actix arbiters are single-threaded runtimes. A pool
//! shared by every worker hands a connection opened on one thread to work on
//! another, and each query then crosses threads twice (an eventfd write and a
//! wake-up each way): at 500 chats/s that was 8 % of the server's samples,
//! plus 19 % on the start-up thread, which drove the first connections.
//! So each arbiter that uses a pool gets a pool of its own (a lane), whose
//! connections are opened on, and driven by, that arbiter.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;

use actix::ArbiterHandle;

/// One `T` per thread that asks for it, made on first use there.
#[derive(Debug)]
pub struct Lanes<T> {
    lanes: Mutex<Vec<(ThreadId, Arc<T>)>>,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Self {
            lanes: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Lanes<T> {
    /// This thread's lane; `make` builds it (given its index and this
    /// arbiter) the first time.
    pub fn here(&self, make: impl FnOnce(usize, ArbiterHandle) -> T) -> Arc<T> {
        let id = std::thread::current().id();
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, lane)) = lanes.iter().find(|(t, _)| *t == id) {
            return Arc::clone(lane);
        }
        let lane = Arc::new(make(lanes.len(), actix::Arbiter::current()));
        lanes.push((id, Arc::clone(&lane)));
        lane
    }

    /// Every lane, for figures and resizes.
    pub fn all(&self) -> Vec<Arc<T>> {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes.iter().map(|(_, lane)| Arc::clone(lane)).collect()
    }
}

/// A bb8 manager whose connections are opened on `home`, so that the task
/// driving each one runs there, whichever thread's checkout asked for it
/// (bb8 also opens connections from its reaper, on the thread that built
/// the pool).
#[derive(Debug)]
pub struct OnThread<M> {
    inner: Arc<M>,
    home: ArbiterHandle,
}

impl<M> OnThread<M> {
    pub fn new(inner: M, home: ArbiterHandle) -> Self {
        Self {
            inner: Arc::new(inner),
            home,
        }
    }
}

impl<M: bb8::ManageConnection> bb8::ManageConnection for OnThread<M> {
    type Connection = M::Connection;
    type Error = M::Error;

    async fn connect(&self) -> Result<M::Connection, M::Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inner = Arc::clone(&self.inner);
        self.home.spawn(async move {
            let _ = tx.send(inner.connect().await);
        });
        match rx.await {
            Ok(opened) => opened,
            // The home arbiter has stopped (shutdown): open it here.
            Err(_) => self.inner.connect().await,
        }
    }

    async fn is_valid(&self, conn: &mut M::Connection) -> Result<(), M::Error> {
        self.inner.is_valid(conn).await
    }

    fn has_broken(&self, conn: &mut M::Connection) -> bool {
        self.inner.has_broken(conn)
    }
}

/// Lane `index`'s part of `total` split over `lanes`: the parts add up to
/// `total`, the first lanes take the remainder. A lane past `lanes` (a
/// thread more than configured) gets the part of `index % lanes`.
pub fn share(total: u32, lanes: u32, index: usize) -> u32 {
    let lanes = lanes.max(1);
    let index = (index % lanes as usize) as u32;
    total / lanes + u32::from(index < total % lanes)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A "connection" that is the thread it was opened on.
    struct OpenedOn;

    impl bb8::ManageConnection for OpenedOn {
        type Connection = ThreadId;
        type Error = Infallible;

        async fn connect(&self) -> Result<ThreadId, Infallible> {
            Ok(std::thread::current().id())
        }

        async fn is_valid(&self, _: &mut ThreadId) -> Result<(), Infallible> {
            Ok(())
        }

        fn has_broken(&self, _: &mut ThreadId) -> bool {
            false
        }
    }

    async fn thread_of(arbiter: &ArbiterHandle) -> ThreadId {
        let (tx, rx) = tokio::sync::oneshot::channel();
        arbiter.spawn(async move {
            let _ = tx.send(std::thread::current().id());
        });
        rx.await.unwrap()
    }

    #[actix::test]
    async fn connections_open_on_their_home_arbiter_whoever_asks() {
        let home = actix::Arbiter::new();
        let home_thread = thread_of(&home.handle()).await;
        assert_ne!(home_thread, std::thread::current().id());
        let pool = bb8::Pool::builder()
            .max_size(2)
            .build_unchecked(OnThread::new(OpenedOn, home.handle()));
        assert_eq!(*pool.get().await.unwrap(), home_thread);

        // Home gone (shutdown): the connection opens where it is asked for.
        home.stop();
        home.join().unwrap();
        let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
        assert!([*a, *b].contains(&std::thread::current().id()));
    }

    #[actix::test]
    async fn each_thread_gets_one_lane_of_its_own() {
        let lanes = Arc::new(Lanes::<ThreadId>::default());
        let here = lanes.here(|_, _| std::thread::current().id());
        assert!(Arc::ptr_eq(&here, &lanes.here(|_, _| unreachable!())));
        let other = actix::Arbiter::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let for_other = Arc::clone(&lanes);
        other.spawn(async move {
            let _ = tx.send(*for_other.here(|_, _| std::thread::current().id()));
        });
        let there = rx.await.unwrap();
        assert_ne!(there, *here);
        assert_eq!(lanes.all().len(), 2);
        other.stop();
    }

    #[test]
    fn shares_add_up_to_the_total() {
        for (total, lanes) in [(16, 2), (5, 2), (1, 2), (0, 3), (7, 3)] {
            let parts: Vec<u32> = (0..lanes)
                .map(|i| share(total, lanes, i as usize))
                .collect();
            assert_eq!(
                parts.iter().sum::<u32>(),
                total,
                "{total} over {lanes}: {parts:?}"
            );
            assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
        }
        assert_eq!((share(5, 2, 2), share(5, 0, 0)), (3, 5));
    }
}
