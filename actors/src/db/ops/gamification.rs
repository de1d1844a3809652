//! XP, streaks and achievements. Awards happen inside the transaction of the
//! action that earns them (logging food, completing a reminder, chatting), so
//! a failed request awards nothing and a retried one awards once: each award
//! has a `source_key` unique per user.

use crate::db::Transaction;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use domain::gamification::{self as rules, Progress, XpEvent};
use domain::profile::timezone_named;
use domain::time::local_date;

use crate::db::{Client, DbError, DbOperation};

/// What one award changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    pub xp: i64,
    pub total_xp: i64,
    /// Achievement ids unlocked by this award.
    pub unlocked: Vec<&'static str>,
}

fn streak_type(event: XpEvent) -> Option<&'static str> {
    match event {
        XpEvent::FoodLogged => Some("food_logging"),
        XpEvent::ReminderCompleted => Some("reminders"),
        XpEvent::ChatMessage => None,
    }
}

/// Awards `event` once per `source_key`; `None` when it was awarded before.
pub async fn award(
    tx: &Transaction<'_>,
    user_id: &str,
    event: XpEvent,
    source_key: &str,
    at: DateTime<Utc>,
    tz: Tz,
) -> Result<Option<Award>, DbError> {
    let day = local_date(at, tz);
    let xp = event.xp();
    let (food, reminders, chats): (i64, i64, i64) = match event {
        XpEvent::FoodLogged => (1, 0, 0),
        XpEvent::ReminderCompleted => (0, 1, 0),
        XpEvent::ChatMessage => (0, 0, 1),
    };
    // The event and the totals it moves in one statement: no row when the
    // event was awarded before (its source_key is taken).
    let stats = tx
        .query(
            "WITH event AS (
                 INSERT INTO xp_events (user_id, event_type, xp, source_key, local_date)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, source_key) DO NOTHING RETURNING xp)
             INSERT INTO user_stats AS s (user_id, total_xp, food_entries, reminders_completed, chat_messages)
             SELECT $1, xp, $6, $7, $8 FROM event
             ON CONFLICT (user_id) DO UPDATE SET
                 total_xp = s.total_xp + EXCLUDED.total_xp,
                 food_entries = s.food_entries + EXCLUDED.food_entries,
                 reminders_completed = s.reminders_completed + EXCLUDED.reminders_completed,
                 chat_messages = s.chat_messages + EXCLUDED.chat_messages
             RETURNING total_xp, food_entries, reminders_completed, chat_messages,
                 (SELECT best FROM streaks WHERE user_id = $1 AND streak_type = 'food_logging')",
            &[
                &user_id,
                &event.as_str(),
                &(xp as i32),
                &source_key,
                &day,
                &food,
                &reminders,
                &chats,
            ],
        )
        .await?;
    let Some(row) = stats.first() else {
        return Ok(None);
    };
    let total_xp: i64 = row.get(0);
    let best_before = row.get::<_, Option<i32>>(4).unwrap_or(0).max(0) as u32;
    let mut best_food = best_before;
    if let Some(kind) = streak_type(event) {
        let best = update_streak(tx, user_id, event, kind, local_date(Utc::now(), tz)).await?;
        if event == XpEvent::FoodLogged {
            best_food = best_food.max(best);
        }
    }
    let after = Progress {
        total_xp,
        food_entries: row.get::<_, i64>(1) as u64,
        reminders_completed: row.get::<_, i64>(2) as u64,
        chat_messages: row.get::<_, i64>(3) as u64,
        best_food_streak: best_food,
    };
    let before = Progress {
        total_xp: total_xp - xp,
        food_entries: after.food_entries.saturating_sub(food as u64),
        reminders_completed: after.reminders_completed.saturating_sub(reminders as u64),
        chat_messages: after.chat_messages.saturating_sub(chats as u64),
        best_food_streak: best_before,
    };
    // Only what this award newly unlocks is written: the rest was written
    // by the award that unlocked it. So an achievement added later reaches
    // users already past its condition only through a backfill migration.
    let earlier = rules::unlocked(&before);
    let ids: Vec<&str> = rules::unlocked(&after)
        .into_iter()
        .filter(|id| !earlier.contains(id))
        .collect();
    if ids.is_empty() {
        return Ok(Some(Award {
            xp,
            total_xp,
            unlocked: Vec::new(),
        }));
    }
    let fresh = tx
        .query(
            "INSERT INTO achievements (user_id, achievement_id)
             SELECT $1, unnest($2::text[])
             ON CONFLICT DO NOTHING RETURNING achievement_id",
            &[&user_id, &ids],
        )
        .await?;
    let unlocked = fresh
        .iter()
        .filter_map(|r| rules::achievement(r.get::<_, &str>(0)).map(|a| a.id))
        .collect();
    Ok(Some(Award {
        xp,
        total_xp,
        unlocked,
    }))
}

/// Recomputes one streak from the user's distinct active days.
async fn update_streak(
    tx: &Transaction<'_>,
    user_id: &str,
    event: XpEvent,
    kind: &str,
    today: NaiveDate,
) -> Result<u32, DbError> {
    let days: Vec<NaiveDate> = tx
        .query(
            "SELECT DISTINCT local_date FROM xp_events WHERE user_id = $1 AND event_type = $2",
            &[&user_id, &event.as_str()],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let s = rules::streak(&days, today);
    let last = days.iter().filter(|d| **d <= today).max().copied();
    let (current, best) = (s.current as i32, s.best as i32);
    let rows = tx
        .query(
            "INSERT INTO streaks (user_id, streak_type, current, best, last_date)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, streak_type) DO UPDATE SET
                 current = EXCLUDED.current,
                 best = GREATEST(streaks.best, EXCLUDED.best),
                 last_date = EXCLUDED.last_date
             RETURNING best",
            &[&user_id, &kind, &current, &best, &last],
        )
        .await?;
    Ok(rows.first().map_or(0, |r| r.get::<_, i32>(0).max(0) as u32))
}

/// A user's total XP; `NotFound` when the user does not exist.
#[derive(Debug, Clone)]
pub struct GetXp {
    pub user_id: String,
}

impl DbOperation for GetXp {
    type Output = i64;
    const NAME: &'static str = "get_xp";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<i64, DbError> {
        let rows = client
            .query(
                "SELECT COALESCE(s.total_xp, 0) FROM users u
                 LEFT JOIN user_stats s ON s.user_id = u.user_id WHERE u.user_id = $1",
                &[&self.user_id],
            )
            .await?;
        rows.first().map(|r| r.get(0)).ok_or(DbError::NotFound)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreakRow {
    pub streak_type: String,
    pub current: i32,
    pub best: i32,
    pub last_date: Option<NaiveDate>,
}

/// A user's streaks with the timezone their days are counted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streaks {
    pub timezone: Tz,
    pub rows: Vec<StreakRow>,
}

/// A user's stored streaks (both types, zero when never active). `current`
/// is as of the last action; the caller zeroes it when that day is older
/// than yesterday in the user's timezone, which comes along for that.
#[derive(Debug, Clone)]
pub struct GetStreaks {
    pub user_id: String,
}

impl DbOperation for GetStreaks {
    type Output = Streaks;
    const NAME: &'static str = "get_streaks";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<Streaks, DbError> {
        let rows = client
            .query(
                "SELECT t.kind, COALESCE(s.current, 0), COALESCE(s.best, 0), s.last_date,
                        u.profile->>'timezone'
                   FROM users u
                   CROSS JOIN (VALUES ('food_logging'), ('reminders')) AS t(kind)
                   LEFT JOIN streaks s ON s.user_id = u.user_id AND s.streak_type = t.kind
                  WHERE u.user_id = $1
                  ORDER BY t.kind",
                &[&self.user_id],
            )
            .await?;
        let first = rows.first().ok_or(DbError::NotFound)?;
        Ok(Streaks {
            timezone: timezone_named(first.get::<_, Option<&str>>(4)),
            rows: rows
                .iter()
                .map(|r| StreakRow {
                    streak_type: r.get(0),
                    current: r.get(1),
                    best: r.get(2),
                    last_date: r.get(3),
                })
                .collect(),
        })
    }
}

/// Achievement ids a user unlocked, with when.
#[derive(Debug, Clone)]
pub struct GetAchievements {
    pub user_id: String,
}

impl DbOperation for GetAchievements {
    type Output = Vec<(String, DateTime<Utc>)>;
    const NAME: &'static str = "get_achievements";
    // Not cached, and read right after the user's own writes: the primary
    // answers, whatever the replica's lag.
    const READ_ONLY: bool = false;

    async fn run(self, client: &mut Client) -> Result<Self::Output, DbError> {
        let rows = client
            .query(
                "SELECT a.achievement_id, a.unlocked_at FROM users u
                   LEFT JOIN achievements a ON a.user_id = u.user_id
                  WHERE u.user_id = $1 ORDER BY a.unlocked_at",
                &[&self.user_id],
            )
            .await?;
        if rows.is_empty() {
            return Err(DbError::NotFound);
        }
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<DateTime<Utc>>>(1)?,
                ))
            })
            .collect())
    }
}
