//! Chat history, long-term memories and the chat's context.
//!
//! Vectors travel in pgvector's binary form (`$n::vector`, [`vector`]): the
//! text form cost PostgreSQL ~45 µs to parse per 384-number vector, several
//! per chat, and the server as long to write. The type's OID is looked up
//! once per connection, when a statement using it is first prepared.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use domain::gamification::XpEvent;
use futures_util::future::{try_join, try_join3, try_join_all};
use futures_util::TryFutureExt;
use serde_json::Value;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::Row;

use crate::db::ops::food::{insert_entry, FoodEntryRow, NewFoodEntry};
use crate::db::ops::gamification::{award, Award};
use crate::db::ops::meals::log_meal;
use crate::db::ops::memories::{insert_memory, NewMemoryRef};
use crate::db::ops::reminders::{CreateReminder, ReminderRow};
use crate::db::{Client, DbError, DbOperation, Transaction};

/// A vector as a statement parameter (`$n::vector`).
pub fn vector(v: &[f32]) -> pgvector::Vector {
    pgvector::Vector::from(v.to_vec())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryTurn {
    pub role: String,
    pub content: String,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHit {
    pub content: String,
    pub distance: f64,
}

/// Everything the chat needs before calling the model, in one connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatContext {
    pub exists: bool,
    pub profile: Value,
    pub preferences: Value,
    pub timezone: chrono_tz::Tz,
    pub memories: Vec<MemoryHit>,
    pub food_entries_today: i64,
    pub calories_today: f64,
    pub protein_today: f64,
    pub carbs_today: f64,
    pub fat_today: f64,
    pub food_streak: i32,
    pub food_streak_last: Option<NaiveDate>,
    pub reminders_active: i64,
    pub total_xp: i64,
}

/// Loads the chat context (the window comes from the cache): profile, the
/// user's exact top-`memory_k` memories nearest to `query_embedding`
/// (B-tree on user_id, then exact distance: never another user's rows),
/// today's food totals in the user's timezone, streak, reminders and XP.
#[derive(Debug, Clone)]
pub struct LoadChatContext {
    pub user_id: String,
    pub query_embedding: Vec<f32>,
    /// Only memories embedded by this model are compared.
    pub embedding_model: String,
    pub memory_k: i64,
    pub now: DateTime<Utc>,
}

impl DbOperation for LoadChatContext {
    type Output = ChatContext;
    const NAME: &'static str = "load_chat_context";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<ChatContext, DbError> {
        let q = vector(&self.query_embedding);
        // The local day needs the profile's timezone: read the days around
        // UTC today and pick it after. One statement, not four: each one
        // costs PostgreSQL a plan-cache check, executor start-up and
        // relation locks, more than these index lookups themselves.
        let utc_today = self.now.date_naive();
        let (from, to) = (
            utc_today - chrono::Duration::days(1),
            utc_today + chrono::Duration::days(1),
        );
        let rows = client
            .query(
                "SELECT u.profile, u.preferences, COALESCE(s.total_xp, 0),
                        m.contents, m.distances,
                        f.days, f.entries, f.calories, f.protein, f.carbs, f.fat,
                        k.current, k.last_date,
                        (SELECT count(*) FROM reminders r WHERE r.user_id = u.user_id AND r.active)
                   FROM users u
                   LEFT JOIN user_stats s ON s.user_id = u.user_id
                   LEFT JOIN streaks k ON k.user_id = u.user_id AND k.streak_type = 'food_logging'
                  CROSS JOIN LATERAL (
                        SELECT array_agg(content ORDER BY d) AS contents, array_agg(d ORDER BY d) AS distances
                          FROM (SELECT content, (embedding <=> $2::vector)::float8 AS d FROM memories
                                 WHERE user_id = u.user_id AND embedding_model = $4
                                 ORDER BY embedding <=> $2::vector LIMIT $3) nearest) m
                  CROSS JOIN LATERAL (
                        SELECT array_agg(local_date) AS days, array_agg(n) AS entries,
                               array_agg(cal) AS calories, array_agg(pro) AS protein,
                               array_agg(carb) AS carbs, array_agg(fat) AS fat
                          FROM (SELECT local_date, count(*) AS n, COALESCE(sum(calories), 0) AS cal,
                                       COALESCE(sum(protein_g), 0) AS pro, COALESCE(sum(carbs_g), 0) AS carb,
                                       COALESCE(sum(fat_g), 0) AS fat
                                  FROM food_entries
                                 WHERE user_id = u.user_id AND local_date BETWEEN $5 AND $6
                                 GROUP BY local_date) days) f
                  WHERE u.user_id = $1",
                &[&self.user_id, &q, &self.memory_k, &self.embedding_model, &from, &to],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(ChatContext::default());
        };
        let profile: Value = row.get(0);
        let tz = domain::profile::timezone(&profile);
        let today = domain::time::local_date(self.now, tz);
        let mut ctx = ChatContext {
            exists: true,
            profile,
            preferences: row.get(1),
            total_xp: row.get(2),
            timezone: tz,
            reminders_active: row.get(13),
            ..Default::default()
        };
        let contents: Option<Vec<String>> = row.get(3);
        let distances: Option<Vec<f64>> = row.get(4);
        ctx.memories = contents
            .unwrap_or_default()
            .into_iter()
            .zip(distances.unwrap_or_default())
            .map(|(content, distance)| MemoryHit { content, distance })
            .collect();
        let days: Option<Vec<NaiveDate>> = row.get(5);
        if let Some(i) = days.unwrap_or_default().iter().position(|d| *d == today) {
            ctx.food_entries_today = element(row, 6, i);
            ctx.calories_today = element(row, 7, i);
            ctx.protein_today = element(row, 8, i);
            ctx.carbs_today = element(row, 9, i);
            ctx.fat_today = element(row, 10, i);
        }
        let last: Option<NaiveDate> = row.get(12);
        // A streak whose last day is before yesterday is broken.
        let alive = last.is_some_and(|d| (today - d).num_days() <= 1);
        ctx.food_streak = if alive {
            row.get::<_, Option<i32>>(11).unwrap_or(0)
        } else {
            0
        };
        ctx.food_streak_last = last;
        Ok(ctx)
    }
}

/// Element `i` of the array in column `col`; the default when the array is
/// NULL (no rows were aggregated) or shorter.
fn element<'a, T>(row: &'a Row, col: usize, i: usize) -> T
where
    T: FromSql<'a> + Default + Copy,
{
    row.get::<_, Option<Vec<T>>>(col)
        .and_then(|v| v.get(i).copied())
        .unwrap_or_default()
}

/// The newest `limit` messages of a user, oldest first (an index-only scan
/// of the covering history index).
async fn history(client: &Client, user_id: &str, limit: i64) -> Result<Vec<HistoryTurn>, DbError> {
    let mut turns: Vec<HistoryTurn> = client
        .query(
            "SELECT role, content, \"timestamp\" FROM conversation_history
              WHERE user_id = $1 ORDER BY \"timestamp\" DESC LIMIT $2",
            &[&user_id, &limit],
        )
        .await?
        .iter()
        .map(|r| HistoryTurn {
            role: r.get(0),
            content: r.get(1),
            timestamp: r.get(2),
        })
        .collect();
    turns.reverse();
    Ok(turns)
}

/// The conversation window on its own, for the cache.
#[derive(Debug, Clone)]
pub struct GetHistory {
    pub user_id: String,
    pub limit: i64,
}

impl DbOperation for GetHistory {
    type Output = Vec<HistoryTurn>;
    const NAME: &'static str = "get_history";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<Vec<HistoryTurn>, DbError> {
        history(client, &self.user_id, self.limit).await
    }
}

/// A fact to remember, with its embedding.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub kind: String,
    pub content: String,
    /// A single-valued fact's slot (diet, weight goal, name): it replaces
    /// the user's earlier fact there.
    pub slot: Option<String>,
    pub embedding: Vec<f32>,
}

/// A write a chat tool asked for. Tools only compute and queue: their
/// writes become durable with the exchange, so a chat that fails after a
/// tool ran stores nothing, and its retry stores things once.
#[derive(Debug, Clone)]
pub enum ToolWrite {
    Food(NewFoodEntry),
    Reminder(CreateReminder),
    /// A saved meal logged (`log_meal`): one food-logging event.
    Meal {
        meal_id: String,
        at: DateTime<Utc>,
        portion: f64,
    },
}

/// What a stored exchange changed, for the caches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedExchange {
    /// The user's XP total after the exchange's awards, when any was made.
    pub total_xp: Option<i64>,
    pub food: Vec<FoodEntryRow>,
    pub reminders: Vec<ReminderRow>,
    /// Saved meals logged (their use counts changed).
    pub meals_logged: usize,
}

/// Persists one chat exchange in ONE transaction, before the answer is
/// returned: creates the user on first contact, stores both messages (the
/// user's with its embedding; the answer's is never read, so never made),
/// any new memories and the tools' writes, and awards the chat XP once per
/// `source_key`. Anything failing leaves nothing behind.
#[derive(Debug, Clone)]
pub struct SaveChatExchange {
    pub user_id: String,
    /// The user's timezone, when the chat's context found the user: the
    /// user's insert is tried only if the user is gone by now (deleted
    /// meanwhile, or a lagging replica).
    pub known_timezone: Option<Tz>,
    pub user_message: String,
    pub user_embedding: Vec<f32>,
    pub assistant_message: String,
    pub memories: Vec<NewMemory>,
    /// The model that made every vector of this exchange.
    pub embedding_model: String,
    pub writes: Vec<ToolWrite>,
    pub source_key: String,
    pub at: DateTime<Utc>,
}

impl DbOperation for SaveChatExchange {
    type Output = SavedExchange;
    const NAME: &'static str = "save_chat_exchange";

    async fn run(self, client: &mut Client) -> Result<SavedExchange, DbError> {
        if let Some(tz) = self.known_timezone {
            match self.save(client, Some(tz)).await {
                // Gone since the context was read (deleted meanwhile, or a
                // lagging replica): that transaction is rolled back.
                Err(DbError::NotFound) => {}
                done => return done,
            }
        }
        self.save(client, None).await
    }
}

impl SaveChatExchange {
    /// The exchange in one transaction. With the user's timezone known, the
    /// user's lock goes out together with the writes: one round trip for
    /// all of them, and `NotFound` if the user is gone.
    async fn save(&self, client: &mut Client, known: Option<Tz>) -> Result<SavedExchange, DbError> {
        let tx = client.transaction().await?;
        let (tz, awarded) = self.lock_and_write(&tx, known).await?;
        let mut saved = SavedExchange {
            total_xp: awarded.map(|a| a.total_xp),
            ..SavedExchange::default()
        };
        // Each award reads the totals the one before left: in series.
        for write in &self.writes {
            match write {
                ToolWrite::Food(entry) => {
                    let (row, awarded) = insert_entry(&tx, &self.user_id, tz, entry).await?;
                    saved.total_xp = awarded.map(|a| a.total_xp).or(saved.total_xp);
                    saved.food.push(row);
                }
                ToolWrite::Meal {
                    meal_id,
                    at,
                    portion,
                } => {
                    let logged = log_meal(&tx, &self.user_id, tz, meal_id, *at, *portion)
                        .await?
                        // Deleted since the tool read it: store nothing.
                        .ok_or_else(|| DbError::Rejected("saved meal gone".into()))?;
                    saved.total_xp = logged.award.map(|a| a.total_xp).or(saved.total_xp);
                    saved.food.extend(logged.entries);
                    saved.meals_logged += 1;
                }
                ToolWrite::Reminder(reminder) => {
                    if reminder.user_id != self.user_id {
                        return Err(DbError::Rejected("reminder for another user".into()));
                    }
                    saved.reminders.push(reminder.insert(&tx, tz).await?);
                }
            }
        }
        tx.commit().await?;
        Ok(saved)
    }

    /// Locks (or first creates) the user, then stores both messages, the
    /// new memories and the chat's XP: the user's timezone and the award.
    async fn lock_and_write(
        &self,
        tx: &Transaction<'_>,
        known: Option<Tz>,
    ) -> Result<(Tz, Option<Award>), DbError> {
        // Statements that need no answer from the one before are pipelined
        // (sent together, run in order): PostgreSQL does the same work in
        // fewer round trips. A failure aborts the transaction, and the
        // first error to come back is the cause.
        let lock = async {
            match known {
                // Sent first, so it is answered first: a missing user stops
                // the rest, whose errors would otherwise name a foreign key.
                Some(tz) => super::users::lock_user_tz(tx, &self.user_id)
                    .await
                    .map(|_| tz),
                None => {
                    let (_, tz) = try_join(
                        tx.execute(
                            "INSERT INTO users (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
                            &[&self.user_id],
                        )
                        .err_into(),
                        super::users::lock_user_tz(tx, &self.user_id),
                    )
                    .await?;
                    Ok(tz)
                }
            }
        };
        let (lock, tz) = match known {
            Some(tz) => (Some(lock), tz),
            None => (None, lock.await?),
        };
        let u = vector(&self.user_embedding);
        let memories: Vec<(pgvector::Vector, &NewMemory)> = self
            .memories
            .iter()
            .map(|m| (vector(&m.embedding), m))
            .collect();
        let history: [&(dyn ToSql + Sync); 6] = [
            &self.user_id,
            &self.user_message,
            &u,
            &self.assistant_message,
            &self.at,
            &self.embedding_model,
        ];
        let writes = try_join3(
            // The assistant's row is a microsecond later so the order is stable.
            tx.execute(
                "INSERT INTO conversation_history (user_id, role, content, embedding, \"timestamp\", embedding_model)
                 VALUES ($1, 'user', $2, $3::vector, $5, $6),
                        ($1, 'assistant', $4, NULL, $5 + interval '1 microsecond', NULL)",
                &history,
            )
            .err_into(),
            try_join_all(memories.iter().map(|(e, m)| {
                let (uid, model) = (&self.user_id, &self.embedding_model);
                async move {
                    let new = NewMemoryRef {
                        kind: &m.kind,
                        content: &m.content,
                        slot: m.slot.as_deref(),
                        embedding: e.clone(),
                        model,
                    };
                    insert_memory(tx, uid, &new).await
                }
            })),
            award(
                tx,
                &self.user_id,
                XpEvent::ChatMessage,
                &self.source_key,
                self.at,
                tz,
            ),
        );
        let (_, _, awarded) = match lock {
            Some(lock) => try_join(lock, writes).await?.1,
            None => writes.await?,
        };
        Ok((tz, awarded))
    }
}
