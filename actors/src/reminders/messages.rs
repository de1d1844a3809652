use actix::Message;

use super::{Busy, ReminderError};
use crate::db::ops::reminders::{FiredReminder, WebhookStatus};
use crate::gate::{Ticket, Timing};

/// Sent by the scheduler to itself every poll interval: claim the due
/// reminders. Answers how many fired.
#[derive(Message)]
#[rtype(result = "(Result<usize, ReminderError>, Timing)")]
pub struct Poll {
    pub ticket: Ticket,
    pub busy: Busy,
}

/// Sent by a poll to its scheduler for each firing it claimed: POST it to
/// the webhook and record the outcome. The ticket was admitted before the
/// claim, so every claimed firing has its place.
#[derive(Message)]
#[rtype(result = "(Result<WebhookStatus, ReminderError>, Timing)")]
pub struct Deliver {
    pub fired: FiredReminder,
    pub ticket: Ticket,
}
