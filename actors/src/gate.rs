//! Admission control for actor mailboxes.
//!
//! actix 0.13 does not enforce a mailbox bound for `Addr::send` (and `do_send`
//! ignores it entirely), so every actor family puts a [`Gate`] in front of its
//! mailbox: a message is admitted only with a permit, and the permit is held
//! until the actor has finished serving it. `capacity` therefore bounds
//! queued + in-flight work, and a full gate answers at once instead of queueing.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ActorError;

/// Counters of one actor family, shared by all its instances and read by the metrics actor.
#[derive(Debug)]
pub struct ActorStats {
    // Registered once: a `metrics::histogram!` per message would hash its
    // key on every call.
    queue_ms: metrics::Histogram,
    service_ms: metrics::Histogram,
    rejected_total: metrics::Counter,
    restarts_total: metrics::Counter,
    capacity: AtomicUsize,
    queued: AtomicI64,
    in_flight: AtomicI64,
    admitted: AtomicU64,
    rejected: AtomicU64,
    restarts: AtomicU64,
    queue_us_total: AtomicU64,
    service_us_total: AtomicU64,
}

/// A point-in-time copy of [`ActorStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ActorSnapshot {
    pub mailbox_capacity: usize,
    pub mailbox_depth: i64,
    pub in_flight: i64,
    pub admitted: u64,
    pub rejected: u64,
    pub restarts: u64,
    pub queue_us_total: u64,
    pub service_us_total: u64,
}

impl ActorStats {
    pub fn snapshot(&self) -> ActorSnapshot {
        ActorSnapshot {
            mailbox_capacity: self.capacity.load(Ordering::Relaxed),
            mailbox_depth: self.queued.load(Ordering::Relaxed).max(0),
            in_flight: self.in_flight.load(Ordering::Relaxed).max(0),
            admitted: self.admitted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            queue_us_total: self.queue_us_total.load(Ordering::Relaxed),
            service_us_total: self.service_us_total.load(Ordering::Relaxed),
        }
    }

    fn new(actor: &'static str, capacity: usize) -> Self {
        let restarts_total =
            metrics::counter!("health_agent_actor_restarts_total", "actor" => actor);
        let rejected_total =
            metrics::counter!("health_agent_actor_rejected_total", "actor" => actor);
        // Present from the start, so rate() and increase() see the first event.
        restarts_total.increment(0);
        rejected_total.increment(0);
        Self {
            queue_ms: metrics::histogram!("health_agent_actor_queue_ms", "actor" => actor),
            service_ms: metrics::histogram!("health_agent_actor_service_ms", "actor" => actor),
            rejected_total,
            restarts_total,
            capacity: AtomicUsize::new(capacity),
            queued: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
            admitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            queue_us_total: AtomicU64::new(0),
            service_us_total: AtomicU64::new(0),
        }
    }

    pub(crate) fn record_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.restarts_total.increment(1);
    }
}

/// The bounded entrance to one actor family's mailboxes.
#[derive(Debug, Clone)]
pub struct Gate {
    name: &'static str,
    permits: Arc<Semaphore>,
    stats: Arc<ActorStats>,
    retry_after: Duration,
}

impl Gate {
    pub fn new(name: &'static str, capacity: usize) -> Self {
        let stats = ActorStats::new(name, capacity);
        metrics::gauge!("health_agent_actor_mailbox_capacity", "actor" => name)
            .set(capacity as f64);
        Self {
            name,
            permits: Arc::new(Semaphore::new(capacity)),
            stats: Arc::new(stats),
            retry_after: Duration::from_secs(1),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn stats(&self) -> &Arc<ActorStats> {
        &self.stats
    }

    /// Admits one message or fails at once with [`ActorError::Overloaded`].
    pub fn admit(&self) -> Result<Ticket, ActorError> {
        Ok(self.admit_job()?.ticket())
    }

    /// Admits a job of several messages (a chat's embeddings and
    /// completions) once, or fails at once. Its messages ride on the one
    /// permit: a job admitted is never refused half-way for lack of room,
    /// which would throw away the work (and the model calls) done so far.
    pub fn admit_job(&self) -> Result<Admission, ActorError> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                self.stats.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(Admission {
                    permit: Arc::new(permit),
                    stats: Arc::clone(&self.stats),
                })
            }
            Err(_) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                self.stats.rejected_total.increment(1);
                Err(ActorError::Overloaded {
                    actor: self.name,
                    retry_after: self.retry_after,
                })
            }
        }
    }

    /// Counts a message refused after admission (e.g. it waited too long
    /// for a connection) as a rejection, and returns the error to answer.
    pub fn shed(&self) -> ActorError {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        self.stats.rejected_total.increment(1);
        ActorError::Overloaded {
            actor: self.name,
            retry_after: self.retry_after,
        }
    }

    /// Changes the capacity at run time. Admitted messages keep their permits;
    /// shrinking takes effect as they finish.
    pub fn resize(&self, capacity: usize) {
        let old = self.stats.capacity.swap(capacity, Ordering::AcqRel);
        if capacity > old {
            self.permits.add_permits(capacity - old);
        } else if capacity < old {
            let permits = Arc::clone(&self.permits);
            let mut owed = old - capacity;
            owed -= permits.forget_permits(owed);
            if owed > 0 {
                // The rest are in use: retire them as they come back.
                tokio::spawn(async move {
                    while owed > 0 {
                        if let Ok(p) = permits.acquire().await {
                            p.forget();
                            owed -= 1;
                        }
                    }
                });
            }
        }
        metrics::gauge!("health_agent_actor_mailbox_capacity", "actor" => self.name)
            .set(capacity as f64);
    }
}

/// A job's admission: one slot, held until the job and every message sent
/// under it are done.
#[derive(Debug)]
pub struct Admission {
    permit: Arc<OwnedSemaphorePermit>,
    stats: Arc<ActorStats>,
}

impl Admission {
    /// A ticket for the next message of this job; it needs no room of its own.
    pub fn ticket(&self) -> Ticket {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        Ticket {
            _permit: Arc::clone(&self.permit),
            stats: Arc::clone(&self.stats),
            enqueued: Instant::now(),
            started: None,
        }
    }
}

/// Proof of admission that travels inside a message. Dropping the last one
/// of a job (and the job's [`Admission`]) frees the slot.
#[derive(Debug)]
pub struct Ticket {
    _permit: Arc<OwnedSemaphorePermit>,
    stats: Arc<ActorStats>,
    enqueued: Instant,
    started: Option<Instant>,
}

/// How long a message waited in the mailbox and how long the actor served it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    pub queued: Duration,
    pub served: Duration,
}

impl Ticket {
    /// Called by the actor when it takes the message out of its mailbox.
    pub fn start(&mut self) -> Duration {
        let now = Instant::now();
        let queued = now - self.enqueued;
        self.started = Some(now);
        self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        self.stats
            .queue_us_total
            .fetch_add(queued.as_micros() as u64, Ordering::Relaxed);
        self.stats.queue_ms.record(queued.as_secs_f64() * 1e3);
        queued
    }

    /// The timing so far; `served` is zero until `start` was called.
    pub fn timing(&self) -> Timing {
        match self.started {
            Some(s) => Timing {
                queued: s - self.enqueued,
                served: s.elapsed(),
            },
            None => Timing {
                queued: self.enqueued.elapsed(),
                served: Duration::ZERO,
            },
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        match self.started {
            Some(s) => {
                let served = s.elapsed();
                self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                self.stats
                    .service_us_total
                    .fetch_add(served.as_micros() as u64, Ordering::Relaxed);
                self.stats.service_ms.record(served.as_secs_f64() * 1e3);
            }
            // Dropped before the actor saw it (caller gone, actor dead).
            None => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_gate_rejects_and_counts_the_rejection() {
        let gate = Gate::new("test", 2);
        let a = gate.admit().unwrap();
        let _b = gate.admit().unwrap();
        assert!(matches!(
            gate.admit(),
            Err(ActorError::Overloaded { actor: "test", .. })
        ));
        assert_eq!(gate.stats().snapshot().rejected, 1);
        drop(a);
        assert!(gate.admit().is_ok());
    }

    #[test]
    fn depth_and_in_flight_follow_the_ticket() {
        let gate = Gate::new("test", 4);
        let mut t = gate.admit().unwrap();
        assert_eq!(gate.stats().snapshot().mailbox_depth, 1);
        t.start();
        let s = gate.stats().snapshot();
        assert_eq!((s.mailbox_depth, s.in_flight), (0, 1));
        drop(t);
        let s = gate.stats().snapshot();
        assert_eq!((s.mailbox_depth, s.in_flight, s.admitted), (0, 0, 1));
    }

    #[test]
    fn a_job_is_admitted_once_and_its_messages_need_no_room() {
        let gate = Gate::new("test", 1);
        let job = gate.admit_job().unwrap();
        assert!(gate.admit().is_err(), "the job holds the only slot");
        let tickets: Vec<_> = (0..5).map(|_| job.ticket()).collect();
        assert_eq!(gate.stats().snapshot().mailbox_depth, 5);
        drop(job);
        assert!(gate.admit().is_err(), "its messages still hold the slot");
        drop(tickets);
        assert!(gate.admit().is_ok());
        assert_eq!(gate.stats().snapshot().admitted, 2);
    }

    #[tokio::test]
    async fn resizing_changes_how_many_are_admitted() {
        let gate = Gate::new("test", 1);
        gate.resize(3);
        let held: Vec<_> = (0..3).map(|_| gate.admit().unwrap()).collect();
        assert!(gate.admit().is_err());
        drop(held);
        gate.resize(1);
        let _one = gate.admit().unwrap();
        assert!(gate.admit().is_err());
        assert_eq!(gate.stats().snapshot().mailbox_capacity, 1);
    }
}
