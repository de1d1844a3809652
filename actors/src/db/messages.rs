use std::future::Future;

use actix::Message;

use super::{Client, DbError};
use crate::gate::{Ticket, Timing};

/// A typed database operation: the only way SQL reaches PostgreSQL.
///
/// Handlers build one of these (see [`super::ops`]) and hand it to
/// `DbHandle::run`; the SQL text lives with the operation, never in a route.
pub trait DbOperation: Send + 'static {
    type Output: Send + 'static;
    /// The operation's name in logs, traces and metrics.
    const NAME: &'static str;
    /// A read that may be served by the replica, when one is configured.
    const READ_ONLY: bool = false;

    fn run(self, client: &mut Client) -> impl Future<Output = Result<Self::Output, DbError>>;
}

/// Sent by `DbHandle::run` to a `DbActor`: run this operation on a pooled
/// connection. The ticket holds the operation's place in the gate.
pub struct Run<O: DbOperation> {
    pub op: O,
    pub ticket: Ticket,
    /// Run on the primary even if the operation is a read.
    pub primary: bool,
    /// Wait out a busy pool instead of being shed (`DbHandle::patient`).
    pub patient: bool,
    /// When the request it serves arrived: its queue target counts from there.
    pub arrived: Option<std::time::Instant>,
}

impl<O: DbOperation> Message for Run<O> {
    type Result = (Result<O::Output, DbError>, Timing);
}
