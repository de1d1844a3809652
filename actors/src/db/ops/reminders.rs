//! Reminders and their firings. A firing is a `reminder_completions` row,
//! unique per (reminder, occurrence): whatever the schedulers do, an
//! occurrence fires once, and completing it awards XP once.

use std::collections::HashMap;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use domain::gamification::XpEvent;
use domain::time::next_daily_trigger;
use tokio_postgres::Row;

use super::gamification::award;
use super::users::lock_user_tz;
use crate::db::{Client, DbError, DbOperation, Transaction};

/// Columns of a stored reminder, in `ReminderRow::from_row` order.
macro_rules! reminder_columns {
    () => {
        "r.id::text, r.user_id, r.kind, r.message, r.daily_time,
    r.trigger_time, r.timezone, r.active, r.next_trigger_at, r.last_triggered_at, r.created_at"
    };
}

/// When a reminder fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every day at this wall-clock time in the reminder's timezone.
    Daily(NaiveTime),
    /// Once, at this instant.
    OneTime(DateTime<Utc>),
}

impl Schedule {
    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::Daily(_) => "daily",
            Schedule::OneTime(_) => "one_time",
        }
    }

    /// The first firing after `now`: the next local occurrence (DST-aware)
    /// or the one-time instant itself.
    pub fn first_trigger(&self, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        match *self {
            Schedule::Daily(t) => next_daily_trigger(t, tz, now),
            Schedule::OneTime(at) => at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderRow {
    pub id: String,
    pub user_id: String,
    pub schedule: Schedule,
    pub message: String,
    pub timezone: String,
    pub active: bool,
    pub next_trigger_at: Option<DateTime<Utc>>,
    pub last_triggered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl ReminderRow {
    /// Reads the reminder from `r` starting at column `at`.
    fn from_row(r: &Row, at: usize) -> Result<Self, DbError> {
        let kind: &str = r.get(at + 2);
        let daily: Option<NaiveTime> = r.get(at + 4);
        let once: Option<DateTime<Utc>> = r.get(at + 5);
        let schedule = match (kind, daily, once) {
            ("daily", Some(t), _) => Schedule::Daily(t),
            ("one_time", _, Some(t)) => Schedule::OneTime(t),
            // The table's CHECK rules this out.
            _ => return Err(DbError::Rejected("reminders_kind_check".into())),
        };
        Ok(Self {
            id: r.get(at),
            user_id: r.get(at + 1),
            schedule,
            message: r.get(at + 3),
            timezone: r.get(at + 6),
            active: r.get(at + 7),
            next_trigger_at: r.get(at + 8),
            last_triggered_at: r.get(at + 9),
            created_at: r.get(at + 10),
        })
    }
}

/// Creates a reminder; `timezone` defaults to the user's profile timezone
/// (else UTC). `NotFound` when the user does not exist.
#[derive(Debug, Clone)]
pub struct CreateReminder {
    pub user_id: String,
    pub schedule: Schedule,
    pub message: String,
    pub timezone: Option<Tz>,
    /// The first firing is the first occurrence after this instant.
    pub now: DateTime<Utc>,
}

impl DbOperation for CreateReminder {
    type Output = ReminderRow;
    const NAME: &'static str = "create_reminder";

    async fn run(self, client: &mut Client) -> Result<ReminderRow, DbError> {
        let tx = client.transaction().await?;
        let user_tz = lock_user_tz(&tx, &self.user_id).await?;
        let row = self.insert(&tx, user_tz).await?;
        tx.commit().await?;
        Ok(row)
    }
}

impl CreateReminder {
    /// Inserts the reminder inside the caller's transaction, which holds the
    /// user's row lock; `user_tz` is the profile's zone.
    pub(crate) async fn insert(
        &self,
        tx: &Transaction<'_>,
        user_tz: Tz,
    ) -> Result<ReminderRow, DbError> {
        let tz = self.timezone.unwrap_or(user_tz);
        let next = self.schedule.first_trigger(tz, self.now);
        let (daily, once) = match self.schedule {
            Schedule::Daily(t) => (Some(t), None),
            Schedule::OneTime(at) => (None, Some(at)),
        };
        let kind = self.schedule.kind();
        let tz_name = tz.name();
        let rows = tx
            .query(
                concat!(
                    "INSERT INTO reminders AS r (user_id, kind, message, daily_time, trigger_time,
                         timezone, next_trigger_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     RETURNING ",
                    reminder_columns!()
                ),
                &[
                    &self.user_id,
                    &kind,
                    &self.message,
                    &daily,
                    &once,
                    &tz_name,
                    &next,
                    &self.now,
                ],
            )
            .await?;
        ReminderRow::from_row(rows.first().ok_or(DbError::NotFound)?, 0)
    }
}

/// A user's reminders, active and inactive, newest first; `NotFound` when
/// the user does not exist.
#[derive(Debug, Clone)]
pub struct ListReminders {
    pub user_id: String,
}

impl DbOperation for ListReminders {
    type Output = Vec<ReminderRow>;
    const NAME: &'static str = "list_reminders";
    // Not cached, and read right after the user's own writes: the primary
    // answers, whatever the replica's lag.
    const READ_ONLY: bool = false;

    async fn run(self, client: &mut Client) -> Result<Vec<ReminderRow>, DbError> {
        let rows = client
            .query(
                concat!(
                    "SELECT r.id IS NOT NULL, ",
                    reminder_columns!(),
                    "
                       FROM users u
                       LEFT JOIN reminders r ON r.user_id = u.user_id
                      WHERE u.user_id = $1
                      ORDER BY r.created_at DESC, r.id DESC"
                ),
                &[&self.user_id],
            )
            .await?;
        if rows.is_empty() {
            return Err(DbError::NotFound);
        }
        rows.iter()
            .filter(|r| r.get::<_, bool>(0))
            .map(|r| ReminderRow::from_row(r, 1))
            .collect()
    }
}

/// Whether a reminder fired and whether its latest firing was completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderStatus {
    pub id: String,
    /// It fired at least once.
    pub triggered: bool,
    /// The latest firing (or the completion recorded before any firing) is done.
    pub completed: bool,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The status query: the reminder and its latest completion row, by when
/// the row was made (the scheduler's firing or a completion before any).
const STATUS_SQL: &str = "SELECT r.id::text, r.last_triggered_at IS NOT NULL, c.completed_at
       FROM reminders r
       LEFT JOIN LATERAL (
            SELECT completed_at FROM reminder_completions
             WHERE reminder_id = r.id
             ORDER BY triggered_at DESC, id DESC LIMIT 1) c ON true
      WHERE r.id = $1::text::uuid AND r.user_id = $2";

fn status_from_row(r: &Row) -> ReminderStatus {
    let completed_at: Option<DateTime<Utc>> = r.get(2);
    ReminderStatus {
        id: r.get(0),
        triggered: r.get(1),
        completed: completed_at.is_some(),
        completed_at,
    }
}

/// One reminder's status; `None` when no such reminder belongs to the user.
/// `reminder_id` must be a well-formed UUID (the route checks).
#[derive(Debug, Clone)]
pub struct GetReminderStatus {
    pub user_id: String,
    pub reminder_id: String,
}

impl DbOperation for GetReminderStatus {
    type Output = Option<ReminderStatus>;
    const NAME: &'static str = "get_reminder_status";
    // Not cached, and read right after the user's own writes: the primary
    // answers, whatever the replica's lag.
    const READ_ONLY: bool = false;

    async fn run(self, client: &mut Client) -> Result<Option<ReminderStatus>, DbError> {
        let rows = client
            .query(STATUS_SQL, &[&self.reminder_id, &self.user_id])
            .await?;
        Ok(rows.first().map(status_from_row))
    }
}

/// Completes the reminder's latest firing if it is pending, or records a
/// completion at `now` when it never fired and was never completed, and
/// awards its XP in the same transaction. A firing already completed changes
/// nothing, so a repeat awards nothing. `NotFound` when no such reminder
/// belongs to the user.
#[derive(Debug, Clone)]
pub struct CompleteReminder {
    pub user_id: String,
    pub reminder_id: String,
    pub now: DateTime<Utc>,
}

impl DbOperation for CompleteReminder {
    type Output = ReminderStatus;
    const NAME: &'static str = "complete_reminder";

    async fn run(self, client: &mut Client) -> Result<ReminderStatus, DbError> {
        let tx = client.transaction().await?;
        // The reminder before the user: the scheduler holds a reminder's
        // lock while its completion insert checks the user key, so the
        // opposite order could deadlock with it.
        let locked = tx
            .query(
                "SELECT 1 FROM reminders WHERE id = $1::text::uuid AND user_id = $2 FOR UPDATE",
                &[&self.reminder_id, &self.user_id],
            )
            .await?;
        if locked.is_empty() {
            return Err(DbError::NotFound);
        }
        let tz = lock_user_tz(&tx, &self.user_id).await?;
        let latest = tx
            .query(
                "SELECT id, completed_at IS NOT NULL FROM reminder_completions
                  WHERE reminder_id = $1::text::uuid
                  ORDER BY triggered_at DESC, id DESC LIMIT 1",
                &[&self.reminder_id],
            )
            .await?;
        let completion: Option<i64> = match latest.first() {
            Some(r) if r.get::<_, bool>(1) => None,
            Some(r) => {
                let id: i64 = r.get(0);
                tx.query(
                    "UPDATE reminder_completions SET completed_at = $2 WHERE id = $1",
                    &[&id, &self.now],
                )
                .await?;
                Some(id)
            }
            None => {
                let rows = tx
                    .query(
                        "INSERT INTO reminder_completions
                             (reminder_id, user_id, scheduled_for, triggered_at, completed_at)
                         VALUES ($1::text::uuid, $2, $3, $3, $3)
                         RETURNING id",
                        &[&self.reminder_id, &self.user_id, &self.now],
                    )
                    .await?;
                rows.first().map(|r| r.get(0))
            }
        };
        if let Some(id) = completion {
            award(
                &tx,
                &self.user_id,
                XpEvent::ReminderCompleted,
                &format!("reminder:{id}"),
                self.now,
                tz,
            )
            .await?;
        }
        let rows = tx
            .query(STATUS_SQL, &[&self.reminder_id, &self.user_id])
            .await?;
        let status = rows.first().map(status_from_row).ok_or(DbError::NotFound)?;
        tx.commit().await?;
        Ok(status)
    }
}

/// Deletes a reminder and its firings; whether it existed for that user.
#[derive(Debug, Clone)]
pub struct DeleteReminder {
    pub user_id: String,
    pub reminder_id: String,
}

impl DbOperation for DeleteReminder {
    type Output = bool;
    const NAME: &'static str = "delete_reminder";

    async fn run(self, client: &mut Client) -> Result<bool, DbError> {
        let rows = client
            .query(
                "DELETE FROM reminders WHERE id = $1::text::uuid AND user_id = $2 RETURNING 1",
                &[&self.reminder_id, &self.user_id],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

/// One firing the scheduler claimed, for the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredReminder {
    /// The `reminder_completions` row.
    pub completion_id: i64,
    pub reminder_id: String,
    pub user_id: String,
    pub message: String,
    pub scheduled_for: DateTime<Utc>,
    pub triggered_at: DateTime<Utc>,
}

/// Where a fired reminder goes next: a daily one to its first local
/// occurrence strictly after `now` (so an outage of days fires once, not
/// once per missed day), a one-time one nowhere.
pub fn reschedule(schedule: Schedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::Daily(t) => Some(next_daily_trigger(t, tz, now)),
        Schedule::OneTime(_) => None,
    }
}

/// Claims up to `limit` active reminders due at `now` in one transaction:
/// locks them (`SKIP LOCKED`, so concurrent schedulers on other instances
/// take other rows), records each firing (the unique occurrence key makes a
/// second firing impossible), moves daily ones to their next occurrence and
/// deactivates one-time ones. The caller delivers webhooks after this
/// committed, so a crash loses at most a notification, never repeats one.
#[derive(Debug, Clone)]
pub struct ClaimDueReminders {
    pub now: DateTime<Utc>,
    pub limit: i64,
    /// Mark the firings `pending` for a webhook (else `none`).
    pub webhook: bool,
}

impl DbOperation for ClaimDueReminders {
    type Output = Vec<FiredReminder>;
    const NAME: &'static str = "claim_due_reminders";

    async fn run(self, client: &mut Client) -> Result<Vec<FiredReminder>, DbError> {
        let tx = client.transaction().await?;
        let due = tx
            .query(
                concat!(
                    "SELECT ",
                    reminder_columns!(),
                    "
                       FROM reminders r
                      WHERE r.active AND r.next_trigger_at <= $1
                      ORDER BY r.next_trigger_at
                      LIMIT $2
                      FOR UPDATE SKIP LOCKED"
                ),
                &[&self.now, &self.limit],
            )
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(due.len());
        let mut users = Vec::with_capacity(due.len());
        let mut occurrences = Vec::with_capacity(due.len());
        let mut nexts: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(due.len());
        let mut actives = Vec::with_capacity(due.len());
        let mut messages = HashMap::with_capacity(due.len());
        for row in &due {
            let r = ReminderRow::from_row(row, 0)?;
            let tz = domain::profile::timezone_named(Some(&r.timezone));
            // The WHERE clause makes this Some.
            let occurrence = r.next_trigger_at.unwrap_or(self.now);
            let next = reschedule(r.schedule, tz, self.now.max(occurrence));
            nexts.push(next);
            actives.push(next.is_some());
            occurrences.push(occurrence);
            users.push(r.user_id);
            messages.insert(r.id.clone(), r.message);
            ids.push(r.id);
        }
        let status = if self.webhook { "pending" } else { "none" };
        let fired = tx
            .query(
                "INSERT INTO reminder_completions
                     (reminder_id, user_id, scheduled_for, triggered_at, webhook_status)
                 SELECT u.id::uuid, u.user_id, u.at, $4, $5
                   FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(id, user_id, at)
                 ON CONFLICT (reminder_id, scheduled_for) DO NOTHING
                 RETURNING id, reminder_id::text, user_id, scheduled_for, triggered_at",
                &[&ids, &users, &occurrences, &self.now, &status],
            )
            .await?;
        tx.query(
            "UPDATE reminders r
                SET last_triggered_at = $4, next_trigger_at = u.next, active = u.active
               FROM unnest($1::text[], $2::timestamptz[], $3::bool[]) AS u(id, next, active)
              WHERE r.id = u.id::uuid",
            &[&ids, &nexts, &actives, &self.now],
        )
        .await?;
        tx.commit().await?;
        Ok(fired
            .iter()
            .map(|r| {
                let reminder_id: String = r.get(1);
                FiredReminder {
                    completion_id: r.get(0),
                    message: messages.get(&reminder_id).cloned().unwrap_or_default(),
                    reminder_id,
                    user_id: r.get(2),
                    scheduled_for: r.get(3),
                    triggered_at: r.get(4),
                }
            })
            .collect())
    }
}

/// How a firing's webhook went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    Delivered,
    Failed,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Delivered => "delivered",
            WebhookStatus::Failed => "failed",
        }
    }
}

/// Records the outcome of a firing's webhook.
#[derive(Debug, Clone)]
pub struct SetWebhookStatus {
    pub completion_id: i64,
    pub status: WebhookStatus,
}

impl DbOperation for SetWebhookStatus {
    type Output = ();
    const NAME: &'static str = "set_webhook_status";

    async fn run(self, client: &mut Client) -> Result<(), DbError> {
        let status = self.status.as_str();
        client
            .query(
                "UPDATE reminder_completions SET webhook_status = $2 WHERE id = $1",
                &[&self.completion_id, &status],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_daily_reminder_fired_days_late_moves_past_now_once() {
        let ny = chrono_tz::America::New_York;
        let t = NaiveTime::from_hms_opt(8, 0, 0).unwrap();
        let now = utc("2026-06-05T15:00:00Z"); // 11:00 EDT, days after the occurrence
        assert_eq!(
            reschedule(Schedule::Daily(t), ny, now),
            Some(utc("2026-06-06T12:00:00Z"))
        );
    }

    #[test]
    fn a_daily_0230_new_york_reminder_fired_the_day_before_spring_forward_moves_to_0300_edt() {
        let ny = chrono_tz::America::New_York;
        let t = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        let fired = utc("2026-03-07T07:30:00Z"); // 02:30 EST
        assert_eq!(
            reschedule(Schedule::Daily(t), ny, fired),
            Some(utc("2026-03-08T07:00:00Z"))
        );
    }

    #[test]
    fn a_one_time_reminder_is_not_rescheduled() {
        let at = utc("2026-06-05T15:00:00Z");
        assert_eq!(reschedule(Schedule::OneTime(at), chrono_tz::UTC, at), None);
    }
}
