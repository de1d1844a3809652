//! The food log: entries with their nutrition, filed under the user's local
//! day so a daily summary is one index range.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use domain::gamification::XpEvent;
use domain::time::local_date;
use tokio_postgres::Row;

use super::gamification::{award, Award};
use super::users::lock_user_tz;
use crate::db::{Client, DbError, DbOperation, Transaction};
use domain::profile::timezone_named;

/// Columns of a stored entry, in `FoodEntryRow::from_row` order.
macro_rules! entry_columns {
    () => {
        "f.id::text, f.user_id, f.description, f.quantity, f.food, f.grams,
    f.calories, f.protein_g, f.carbs_g, f.fat_g, f.nutrition_source, f.logged_at, f.local_date"
    };
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FoodEntryRow {
    pub id: String,
    pub user_id: String,
    pub description: String,
    pub quantity: Option<String>,
    pub food: Option<String>,
    pub grams: Option<f64>,
    pub calories: Option<f64>,
    pub protein_g: Option<f64>,
    pub carbs_g: Option<f64>,
    pub fat_g: Option<f64>,
    pub nutrition_source: String,
    pub logged_at: DateTime<Utc>,
    pub local_date: NaiveDate,
}

impl FoodEntryRow {
    /// Reads the entry from `r` starting at column `at`.
    pub(crate) fn from_row(r: &Row, at: usize) -> Self {
        Self {
            id: r.get(at),
            user_id: r.get(at + 1),
            description: r.get(at + 2),
            quantity: r.get(at + 3),
            food: r.get(at + 4),
            grams: r.get(at + 5),
            calories: r.get(at + 6),
            protein_g: r.get(at + 7),
            carbs_g: r.get(at + 8),
            fat_g: r.get(at + 9),
            nutrition_source: r.get(at + 10),
            logged_at: r.get(at + 11),
            local_date: r.get(at + 12),
        }
    }
}

/// Where an entry's nutrition came from (`food_entries.nutrition_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NutritionSource {
    User,
    Estimated,
    Unknown,
}

impl NutritionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NutritionSource::User => "user",
            NutritionSource::Estimated => "estimated",
            NutritionSource::Unknown => "unknown",
        }
    }
}

/// A validated entry to store; the route has settled its nutrition.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFoodEntry {
    pub description: String,
    pub quantity: Option<String>,
    pub food: Option<String>,
    pub grams: Option<f64>,
    pub calories: Option<f64>,
    pub protein_g: Option<f64>,
    pub carbs_g: Option<f64>,
    pub fat_g: Option<f64>,
    pub source: NutritionSource,
    pub logged_at: DateTime<Utc>,
}

/// Stores a food entry on the user's local day and awards its XP in the same
/// transaction; `NotFound` (and nothing written) when the user does not exist.
#[derive(Debug, Clone)]
pub struct LogFood {
    pub user_id: String,
    pub entry: NewFoodEntry,
}

impl DbOperation for LogFood {
    type Output = FoodEntryRow;
    const NAME: &'static str = "log_food";

    async fn run(self, client: &mut Client) -> Result<FoodEntryRow, DbError> {
        let tx = client.transaction().await?;
        let tz = lock_user_tz(&tx, &self.user_id).await?;
        let (row, _) = insert_entry(&tx, &self.user_id, tz, &self.entry).await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// Stores `e` on the user's local day in `tz` and awards its XP, inside the
/// caller's transaction (which holds the user's row lock).
pub(crate) async fn insert_entry(
    tx: &Transaction<'_>,
    user_id: &str,
    tz: Tz,
    e: &NewFoodEntry,
) -> Result<(FoodEntryRow, Option<Award>), DbError> {
    let row = insert_entry_row(tx, user_id, tz, e).await?;
    let awarded = award(
        tx,
        user_id,
        XpEvent::FoodLogged,
        &format!("food:{}", row.id),
        e.logged_at,
        tz,
    )
    .await?;
    Ok((row, awarded))
}

/// Stores `e` on the user's local day in `tz` without awarding anything (a
/// saved meal's foods are one event together).
pub(crate) async fn insert_entry_row(
    tx: &Transaction<'_>,
    user_id: &str,
    tz: Tz,
    e: &NewFoodEntry,
) -> Result<FoodEntryRow, DbError> {
    let day = local_date(e.logged_at, tz);
    let source = e.source.as_str();
    let rows = tx
        .query(
            concat!(
"INSERT INTO food_entries AS f (user_id, description, quantity, food, grams,
                         calories, protein_g, carbs_g, fat_g, nutrition_source, logged_at, local_date)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     RETURNING ",
entry_columns!()
),
            &[
                &user_id,
                &e.description,
                &e.quantity,
                &e.food,
                &e.grams,
                &e.calories,
                &e.protein_g,
                &e.carbs_g,
                &e.fat_g,
                &source,
                &e.logged_at,
                &day,
            ],
        )
        .await?;
    rows.first()
        .map(|r| FoodEntryRow::from_row(r, 0))
        .ok_or(DbError::NotFound)
}

/// One local day of a user's food log (cached as is: `reads::food_day`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FoodDay {
    pub date: NaiveDate,
    pub timezone: Tz,
    /// Ordered by time eaten.
    pub entries: Vec<FoodEntryRow>,
}

/// A user's entries for one local day (default: today in their timezone);
/// `NotFound` when the user does not exist.
#[derive(Debug, Clone)]
pub struct GetFoodDay {
    pub user_id: String,
    pub date: Option<NaiveDate>,
}

impl DbOperation for GetFoodDay {
    type Output = FoodDay;
    const NAME: &'static str = "get_food_day";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<FoodDay, DbError> {
        // Without a date, "today" depends on the timezone this same query
        // reads; every zone's today lies within a day of UTC's, so read that
        // window and keep the local day: one round trip either way.
        let now = Utc::now();
        let (from, to) = match self.date {
            Some(d) => (d, d),
            None => {
                let utc_today = now.date_naive();
                (utc_today - Duration::days(1), utc_today + Duration::days(1))
            }
        };
        let rows = client
            .query(
                concat!(
                    "SELECT u.profile->>'timezone', ",
                    entry_columns!(),
                    "
                       FROM users u
                       LEFT JOIN food_entries f ON f.user_id = u.user_id
                            AND f.local_date BETWEEN $2 AND $3
                      WHERE u.user_id = $1
                      ORDER BY f.logged_at, f.created_at"
                ),
                &[&self.user_id, &from, &to],
            )
            .await?;
        let first = rows.first().ok_or(DbError::NotFound)?;
        let timezone = timezone_named(first.get::<_, Option<&str>>(0));
        let date = self.date.unwrap_or_else(|| local_date(now, timezone));
        let entries = rows
            .iter()
            // The LEFT JOIN's lone all-null row means no entries.
            .filter(|r| r.get::<_, Option<&str>>(1).is_some())
            .map(|r| FoodEntryRow::from_row(r, 1))
            .filter(|e| e.local_date == date)
            .collect();
        Ok(FoodDay {
            date,
            timezone,
            entries,
        })
    }
}

/// Removes one of the user's food entries and takes back the XP it earned
/// (its ledger row and the running totals), in one transaction. Streak days
/// and unlocked achievements stay: they record that the user logged that
/// day. Returns the entry's local day (its cache must follow), `None` when
/// the user has no such entry; `NotFound` when the user does not exist.
#[derive(Debug, Clone)]
pub struct DeleteFoodEntry {
    pub user_id: String,
    /// A UUID, hyphenated (the route parsed it).
    pub entry_id: String,
}

impl DbOperation for DeleteFoodEntry {
    type Output = Option<NaiveDate>;
    const NAME: &'static str = "delete_food_entry";

    async fn run(self, client: &mut Client) -> Result<Option<NaiveDate>, DbError> {
        let tx = client.transaction().await?;
        // The user's lock orders this with a concurrent log or chat.
        lock_user_tz(&tx, &self.user_id).await?;
        let deleted = tx
            .query(
                "DELETE FROM food_entries
                  WHERE user_id = $1 AND id = CAST($2::text AS uuid)
                  RETURNING local_date",
                &[&self.user_id, &self.entry_id],
            )
            .await?;
        let Some(day) = deleted.first().map(|r| r.get::<_, NaiveDate>(0)) else {
            return Ok(None);
        };
        let source_key = format!("food:{}", self.entry_id);
        tx.execute(
            "WITH gone AS (
                 DELETE FROM xp_events WHERE user_id = $1 AND source_key = $2 RETURNING xp)
             UPDATE user_stats SET
                 total_xp = greatest(total_xp - (SELECT sum(xp) FROM gone), 0),
                 food_entries = greatest(food_entries - 1, 0)
              WHERE user_id = $1 AND EXISTS (SELECT 1 FROM gone)",
            &[&self.user_id, &source_key],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(day))
    }
}
