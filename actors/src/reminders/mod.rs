//! `ReminderScheduler`: fires due reminders and notifies the webhook.
//!
//! One runs in every process, and every instance may run one: each poll
//! claims due reminders in one transaction with `FOR UPDATE SKIP LOCKED`
//! (`ClaimDueReminders`), so concurrent schedulers take disjoint rows, and
//! the unique occurrence key of `reminder_completions` makes a second firing
//! of the same occurrence impossible. Webhooks go out only after the claim
//! committed: a crash can lose a notification, never repeat a firing.
//!
//! It runs on an arbiter (thread) of its own with its own `DbActor` over the
//! shared pools, rather than holding a pool clone: its SQL stays in typed
//! operations, passes the same db gate, deadline and supervision as a
//! request's, and its polling and webhook retries never occupy an HTTP
//! worker's thread.

mod handlers;
mod messages;
mod webhook;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, ArbiterHandle, AsyncContext, Context, Supervisor};

pub use messages::{Deliver, Poll};
pub use webhook::{Webhook, WebhookPayload};

use crate::db::{DbError, DbHandle, DbShared};
use crate::error::ActorError;
use crate::gate::Gate;
use crate::supervise::ServeError;

/// At most this many reminders are claimed per poll.
pub const BATCH: i64 = 100;
/// One webhook request's deadline.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one firing's webhook is retried.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);
/// One claim's deadline.
const POLL_DEADLINE: Duration = Duration::from_secs(30);
/// One delivery's deadline: the retry budget plus a last attempt and the
/// status update.
const DELIVER_DEADLINE: Duration = Duration::from_secs(45);

#[derive(Debug, Clone)]
pub struct ReminderConfig {
    pub poll_interval: Duration,
    /// Where each firing is POSTed; `None` for no webhook.
    pub webhook_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error(transparent)]
    Actor(#[from] ActorError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("reminder work timed out")]
    Timeout,
}

impl ServeError for ReminderError {
    fn timed_out() -> Self {
        ReminderError::Timeout
    }
}

/// The scheduler family's admission, built with it: its claims and
/// deliveries (`reminders`), and its reserved database admission
/// (`db_reminders`: a claim per poll plus a status update per delivery, one
/// more than the deliveries so a poll is never starved by them). Both exist
/// for metrics and reloads even when the scheduler is off.
#[derive(Debug, Clone)]
pub struct ReminderGates {
    pub work: Gate,
    pub db: Gate,
}

impl ReminderGates {
    pub fn new(capacity: usize) -> Self {
        Self {
            work: Gate::new("reminders", capacity),
            db: Gate::new("db_reminders", capacity + 1),
        }
    }

    /// A new `actors.reminders.mailbox_capacity`, applied to both.
    pub fn resize(&self, capacity: usize) {
        self.work.resize(capacity);
        self.db.resize(capacity + 1);
    }
}

/// What the scheduler's restarts share.
#[derive(Debug)]
pub struct ReminderShared {
    /// Bounds claims plus deliveries in flight: a poll claims only as many
    /// reminders as it can admit deliveries for, so a slow webhook slows
    /// claiming instead of piling up work.
    gate: Gate,
    poll_interval: Duration,
    webhook: Option<Webhook>,
}

impl ReminderShared {
    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

/// Set while a poll's claim runs, so a slow one is not overlapped by the next.
#[derive(Debug)]
pub struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

pub struct ReminderScheduler {
    shared: Arc<ReminderShared>,
    db: DbHandle,
    busy: Arc<AtomicBool>,
}

impl ReminderScheduler {
    fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let busy = Busy(Arc::clone(&self.busy));
        match self.shared.gate.admit() {
            Ok(ticket) => ctx.notify(Poll { ticket, busy }),
            // Full of deliveries: claim more once some finished.
            Err(_) => drop(busy),
        }
    }
}

impl Actor for ReminderScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Also runs after a restart; the old interval went with the old context.
        self.poll(ctx);
        ctx.run_interval(self.shared.poll_interval, |act, ctx| act.poll(ctx));
    }
}

crate::restarts_on_panic!(ReminderScheduler, "reminders");

/// The running scheduler: its arbiter, to stop it with the server.
pub struct ReminderSchedulerHandle {
    addr: Addr<ReminderScheduler>,
    arbiter: ArbiterHandle,
    shared: Arc<ReminderShared>,
}

impl ReminderSchedulerHandle {
    /// Starts the scheduler on a new arbiter, admitting its work through
    /// `gate`. Must run inside an actix `System`.
    pub fn start(
        cfg: &ReminderConfig,
        gate: Gate,
        db: Arc<DbShared>,
    ) -> Result<Self, reqwest::Error> {
        let webhook = cfg
            .webhook_url
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(Webhook::new)
            .transpose()?;
        let shared = Arc::new(ReminderShared {
            gate,
            poll_interval: cfg.poll_interval,
            webhook,
        });
        let arbiter = Arbiter::new().handle();
        let for_actor = Arc::clone(&shared);
        // The factory runs on the new arbiter, so its DbActor lives there too.
        let addr = Supervisor::start_in_arbiter(&arbiter, move |_| ReminderScheduler {
            shared: for_actor,
            db: DbHandle::start(db),
            busy: Arc::new(AtomicBool::new(false)),
        });
        Ok(Self {
            addr,
            arbiter,
            shared,
        })
    }

    pub fn shared(&self) -> &Arc<ReminderShared> {
        &self.shared
    }

    pub fn addr(&self) -> &Addr<ReminderScheduler> {
        &self.addr
    }

    /// Stops polling and drops deliveries in flight (their firings stay
    /// recorded, with webhook status `pending`).
    pub fn stop(&self) {
        self.arbiter.stop();
    }
}
