//! Saved meals (the original's "food formulas"): a named set of foods,
//! logged in one step as one food-logging event.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use domain::gamification::XpEvent;
use futures_util::future::try_join;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;

use super::conversation::vector;
use super::food::{insert_entry_row, FoodEntryRow, NewFoodEntry, NutritionSource};
use super::gamification::{award, Award};
use super::users::lock_user_tz;
use crate::db::{Client, DbError, DbOperation, Transaction};
use domain::profile::timezone_named;

/// Saved meals one user may keep: the list is read (and cached) whole.
pub const MAX_MEALS_PER_USER: i64 = 200;
/// The most a food entry may hold (as `POST …/food` accepts), scaled or not.
pub const MAX_CALORIES: f64 = 20_000.0;
pub const MAX_MACRO_G: f64 = 2_000.0;

/// Columns of a stored meal, in `MealRow::from_row` order.
macro_rules! meal_columns {
    () => {
        "m.id::text, m.user_id, m.name, m.keywords, m.description, m.foods,
    m.total_calories, m.total_protein_g, m.total_carbs_g, m.total_fat_g, m.times_used,
    m.last_used_at, m.is_auto_detected, m.confidence_score, m.created_at, m.updated_at"
    };
}

/// One food of a meal with its settled nutrition, as stored in `foods`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MealFood {
    pub description: String,
    pub quantity: Option<String>,
    pub food: Option<String>,
    pub grams: Option<f64>,
    pub calories: Option<f64>,
    pub protein_g: Option<f64>,
    pub carbs_g: Option<f64>,
    pub fat_g: Option<f64>,
    /// `user`, `estimated` or `unknown`, as for a food entry.
    pub nutrition_source: String,
}

impl MealFood {
    /// The food as `POST …/food` settled it (its time is not kept).
    pub fn from_entry(e: &NewFoodEntry) -> Self {
        Self {
            description: e.description.clone(),
            quantity: e.quantity.clone(),
            food: e.food.clone(),
            grams: e.grams,
            calories: e.calories,
            protein_g: e.protein_g,
            carbs_g: e.carbs_g,
            fat_g: e.fat_g,
            nutrition_source: e.source.as_str().to_owned(),
        }
    }

    /// What makes it "the same food" as a logged one.
    pub fn key(&self) -> String {
        domain::meals::food_key(self.food.as_deref(), &self.description)
    }

    /// The food entry logging `portion` of it at `at` stores; `Rejected`
    /// when the portion takes a value past what a food entry may hold.
    pub fn entry(&self, portion: f64, at: DateTime<Utc>) -> Result<NewFoodEntry, DbError> {
        let scale = |v: Option<f64>, max: f64| -> Result<Option<f64>, DbError> {
            match v.map(|v| round2(v * portion)) {
                Some(s) if s > max => Err(DbError::Rejected("portion".into())),
                other => Ok(other),
            }
        };
        let source = match self.nutrition_source.as_str() {
            "user" => NutritionSource::User,
            "estimated" => NutritionSource::Estimated,
            _ => NutritionSource::Unknown,
        };
        let quantity = if (portion - 1.0).abs() < 1e-9 {
            self.quantity.clone()
        } else {
            let p = round2(portion);
            Some(match &self.quantity {
                Some(q) => format!("{q} ×{p}"),
                None => format!("×{p}"),
            })
        };
        Ok(NewFoodEntry {
            description: self.description.clone(),
            quantity,
            food: self.food.clone(),
            grams: self.grams.map(|g| round2(g * portion)).filter(|g| *g > 0.0),
            calories: scale(self.calories, MAX_CALORIES)?,
            protein_g: scale(self.protein_g, MAX_MACRO_G)?,
            carbs_g: scale(self.carbs_g, MAX_MACRO_G)?,
            fat_g: scale(self.fat_g, MAX_MACRO_G)?,
            source,
            logged_at: at,
        })
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A meal's totals: the sum of its foods' known values.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MealTotals {
    pub calories: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
}

impl MealTotals {
    pub fn of(foods: &[MealFood]) -> Self {
        let sum = |f: fn(&MealFood) -> Option<f64>| round2(foods.iter().filter_map(f).sum());
        Self {
            calories: sum(|f| f.calories),
            protein_g: sum(|f| f.protein_g),
            carbs_g: sum(|f| f.carbs_g),
            fat_g: sum(|f| f.fat_g),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MealRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub keywords: Vec<String>,
    pub description: Option<String>,
    pub foods: Vec<MealFood>,
    pub totals: MealTotals,
    pub times_used: i32,
    pub last_used_at: Option<DateTime<Utc>>,
    pub is_auto_detected: bool,
    pub confidence_score: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MealRow {
    fn from_row(r: &Row, at: usize) -> Result<Self, DbError> {
        let foods: Value = r.get(at + 5);
        let foods = serde_json::from_value(foods)
            .map_err(|e| DbError::Shared(format!("saved_meals.foods: {e}")))?;
        Ok(Self {
            id: r.get(at),
            user_id: r.get(at + 1),
            name: r.get(at + 2),
            keywords: r.get(at + 3),
            description: r.get(at + 4),
            foods,
            totals: MealTotals {
                calories: r.get(at + 6),
                protein_g: r.get(at + 7),
                carbs_g: r.get(at + 8),
                fat_g: r.get(at + 9),
            },
            times_used: r.get(at + 10),
            last_used_at: r.get(at + 11),
            is_auto_detected: r.get(at + 12),
            confidence_score: r.get(at + 13),
            created_at: r.get(at + 14),
            updated_at: r.get(at + 15),
        })
    }
}

/// A validated meal to store; the route settled its foods and embedded
/// `search_text`. The totals are summed here, never taken from a client.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMeal {
    pub name: String,
    pub keywords: Vec<String>,
    pub description: Option<String>,
    pub foods: Vec<MealFood>,
    /// Name, keywords, description and foods: what keyword search reads.
    pub search_text: String,
    pub embedding: Vec<f32>,
    /// The model that made `embedding` (only its vectors are compared).
    pub embedding_model: String,
    pub is_auto_detected: bool,
    pub confidence_score: Option<f64>,
}

impl NewMeal {
    /// The text a meal is found by, keyword or meaning.
    pub fn search_text(
        name: &str,
        keywords: &[String],
        description: Option<&str>,
        foods: &[MealFood],
    ) -> String {
        let mut parts = vec![name.to_owned()];
        parts.extend(keywords.iter().cloned());
        parts.extend(description.map(str::to_owned));
        parts.extend(foods.iter().map(|f| f.description.clone()));
        parts.join(". ")
    }

    fn food_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.foods.iter().map(MealFood::key).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn foods_json(&self) -> Result<Value, DbError> {
        serde_json::to_value(&self.foods).map_err(|e| DbError::Shared(e.to_string()))
    }
}

/// Saves a meal: `NotFound` when the user does not exist, `Conflict` at
/// [`MAX_MEALS_PER_USER`], or for an auto-detected meal whose foods are
/// saved already.
#[derive(Debug, Clone)]
pub struct CreateMeal {
    pub user_id: String,
    pub meal: NewMeal,
}

impl DbOperation for CreateMeal {
    type Output = MealRow;
    const NAME: &'static str = "create_meal";

    async fn run(self, client: &mut Client) -> Result<MealRow, DbError> {
        let tx = client.transaction().await?;
        // The user's row lock serialises the count check with other saves.
        lock_user_tz(&tx, &self.user_id).await?;
        let m = &self.meal;
        let keys = m.food_keys();
        let rows = tx
            .query(
                "SELECT count(*), count(*) FILTER (WHERE food_keys = $2)
                   FROM saved_meals WHERE user_id = $1",
                &[&self.user_id, &keys],
            )
            .await?;
        let (count, same): (i64, i64) = rows.first().map_or((0, 0), |r| (r.get(0), r.get(1)));
        if count >= MAX_MEALS_PER_USER {
            return Err(DbError::Conflict("saved_meals_limit".into()));
        }
        if m.is_auto_detected && same > 0 {
            return Err(DbError::Conflict("saved_meals_foods".into()));
        }
        let t = MealTotals::of(&m.foods);
        let (foods, embedding) = (m.foods_json()?, vector(&m.embedding));
        let rows = tx
            .query(
                concat!(
                    "INSERT INTO saved_meals AS m (user_id, name, keywords, description, foods,
                        food_keys, total_calories, total_protein_g, total_carbs_g, total_fat_g,
                        search, embedding, is_auto_detected, confidence_score, embedding_model)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                        to_tsvector('simple', $11), $12::vector, $13, $14, $15)
                     RETURNING ",
                    meal_columns!()
                ),
                &[
                    &self.user_id,
                    &m.name,
                    &m.keywords,
                    &m.description,
                    &foods,
                    &keys,
                    &t.calories,
                    &t.protein_g,
                    &t.carbs_g,
                    &t.fat_g,
                    &m.search_text,
                    &embedding,
                    &m.is_auto_detected,
                    &m.confidence_score,
                    &m.embedding_model,
                ],
            )
            .await?;
        let row = MealRow::from_row(rows.first().ok_or(DbError::NotFound)?, 0)?;
        tx.commit().await?;
        Ok(row)
    }
}

/// A user's saved meals, most used first (then most recently used, then
/// newest); `NotFound` when the user does not exist.
#[derive(Debug, Clone)]
pub struct ListMeals {
    pub user_id: String,
}

impl DbOperation for ListMeals {
    type Output = Vec<MealRow>;
    const NAME: &'static str = "list_meals";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<Vec<MealRow>, DbError> {
        let rows = client
            .query(
                concat!(
                    "SELECT u.user_id, ",
                    meal_columns!(),
                    " FROM users u LEFT JOIN saved_meals m ON m.user_id = u.user_id
                     WHERE u.user_id = $1
                     ORDER BY m.times_used DESC, m.last_used_at DESC NULLS LAST,
                              m.created_at DESC, m.id"
                ),
                &[&self.user_id],
            )
            .await?;
        if rows.is_empty() {
            return Err(DbError::NotFound);
        }
        rows.iter()
            // The LEFT JOIN's lone all-null row means no meals.
            .filter(|r| r.get::<_, Option<&str>>(1).is_some())
            .map(|r| MealRow::from_row(r, 1))
            .collect()
    }
}

/// One saved meal read from the primary (what a change starts from);
/// `None` when the user has no such meal.
#[derive(Debug, Clone)]
pub struct GetMeal {
    pub user_id: String,
    pub meal_id: String,
}

impl DbOperation for GetMeal {
    type Output = Option<MealRow>;
    const NAME: &'static str = "get_meal";

    async fn run(self, client: &mut Client) -> Result<Option<MealRow>, DbError> {
        let rows = client
            .query(
                concat!(
                    "SELECT ",
                    meal_columns!(),
                    " FROM saved_meals m WHERE m.id = $1::text::uuid AND m.user_id = $2"
                ),
                &[&self.meal_id, &self.user_id],
            )
            .await?;
        rows.first().map(|r| MealRow::from_row(r, 0)).transpose()
    }
}

/// Replaces a meal's name, keywords, description and foods (totals, search
/// text and embedding follow); its use counts stay. `None` when the user has
/// no such meal.
#[derive(Debug, Clone)]
pub struct UpdateMeal {
    pub user_id: String,
    pub meal_id: String,
    pub meal: NewMeal,
}

impl DbOperation for UpdateMeal {
    type Output = Option<MealRow>;
    const NAME: &'static str = "update_meal";

    async fn run(self, client: &mut Client) -> Result<Option<MealRow>, DbError> {
        let m = &self.meal;
        let t = MealTotals::of(&m.foods);
        let (foods, keys, embedding) = (m.foods_json()?, m.food_keys(), vector(&m.embedding));
        let rows = client
            .query(
                concat!(
                    "UPDATE saved_meals AS m SET name = $3, keywords = $4, description = $5,
                        foods = $6, food_keys = $7, total_calories = $8, total_protein_g = $9,
                        total_carbs_g = $10, total_fat_g = $11, search = to_tsvector('simple', $12),
                        embedding = $13::vector, embedding_model = $14, updated_at = now()
                      WHERE m.id = $1::text::uuid AND m.user_id = $2
                      RETURNING ",
                    meal_columns!()
                ),
                &[
                    &self.meal_id,
                    &self.user_id,
                    &m.name,
                    &m.keywords,
                    &m.description,
                    &foods,
                    &keys,
                    &t.calories,
                    &t.protein_g,
                    &t.carbs_g,
                    &t.fat_g,
                    &m.search_text,
                    &embedding,
                    &m.embedding_model,
                ],
            )
            .await?;
        rows.first().map(|r| MealRow::from_row(r, 0)).transpose()
    }
}

/// Deletes a saved meal (the food it logged stays): `true` when it existed.
#[derive(Debug, Clone)]
pub struct DeleteMeal {
    pub user_id: String,
    pub meal_id: String,
}

impl DbOperation for DeleteMeal {
    type Output = bool;
    const NAME: &'static str = "delete_meal";

    async fn run(self, client: &mut Client) -> Result<bool, DbError> {
        let n = client
            .execute(
                "DELETE FROM saved_meals WHERE id = $1::text::uuid AND user_id = $2",
                &[&self.meal_id, &self.user_id],
            )
            .await?;
        Ok(n > 0)
    }
}

/// A user's meals nearest to a query: keyword hits (name, keywords,
/// description, foods; word prefixes) first, then by cosine similarity of
/// the embeddings, at least `min_similarity` unless a keyword hit. Only
/// vectors of `embedding_model` are compared (another model's meal is found
/// by keyword only, with similarity 0). The B-tree on user_id narrows to
/// the user's rows (at most [`MAX_MEALS_PER_USER`]); distances are exact.
#[derive(Debug, Clone)]
pub struct SearchMeals {
    pub user_id: String,
    /// `to_tsquery('simple', …)` text, built from plain words; may be empty.
    pub tsquery: String,
    pub embedding: Vec<f32>,
    /// The model that made `embedding`.
    pub embedding_model: String,
    pub min_similarity: f64,
    pub limit: i64,
}

/// A search result: the meal, whether a keyword matched, and its similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct MealHit {
    pub meal: MealRow,
    pub keyword_match: bool,
    pub similarity: f64,
}

impl DbOperation for SearchMeals {
    type Output = Vec<MealHit>;
    const NAME: &'static str = "search_meals";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<Vec<MealHit>, DbError> {
        let q = vector(&self.embedding);
        let rows = client
            .query(
                concat!(
                    "SELECT ",
                    meal_columns!(),
                    ", s.hit, s.sim FROM saved_meals m,
                     LATERAL (SELECT ($2 <> '' AND m.search @@ to_tsquery('simple', $2)) AS hit,
                                     CASE WHEN m.embedding_model = $6
                                          THEN (1 - (m.embedding <=> $3::vector))::float8
                                          ELSE 0 END AS sim,
                                     m.embedding_model = $6 AS comparable) s
                     WHERE m.user_id = $1 AND (s.hit OR (s.comparable AND s.sim >= $4))
                     ORDER BY s.hit DESC, s.sim DESC, m.times_used DESC
                     LIMIT $5"
                ),
                &[
                    &self.user_id,
                    &self.tsquery,
                    &q,
                    &self.min_similarity,
                    &self.limit,
                    &self.embedding_model,
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(MealHit {
                    meal: MealRow::from_row(r, 0)?,
                    keyword_match: r.get(16),
                    similarity: r.get(17),
                })
            })
            .collect()
    }
}

/// Saved meals whose vector is not `args[0]`'s, up to `args[1]`: (id, the
/// text to embed: [`NewMeal::search_text`]), with how many remain in all.
pub(super) async fn stale_meals(
    client: &mut Client,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(Vec<(String, String)>, i64), DbError> {
    let rows = client
        .query(
            concat!(
                "SELECT ",
                meal_columns!(),
                ", count(*) OVER () FROM saved_meals m
                 WHERE m.embedding_model <> $1 ORDER BY m.id LIMIT $2"
            ),
            args,
        )
        .await?;
    let total = rows.first().map_or(0, |r| r.get(16));
    let meals = rows
        .iter()
        .map(|r| {
            let m = MealRow::from_row(r, 0)?;
            let text =
                NewMeal::search_text(&m.name, &m.keywords, m.description.as_deref(), &m.foods);
            Ok((m.id, text))
        })
        .collect::<Result<_, DbError>>()?;
    Ok((meals, total))
}

/// What logging a meal stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedMeal {
    /// The meal with its new use count.
    pub meal: MealRow,
    pub entries: Vec<FoodEntryRow>,
    /// The award, `None` when nothing was awarded.
    pub award: Option<Award>,
}

/// Logs every food of a saved meal, scaled by `portion`, at `at`, in one
/// transaction, as ONE food-logging event (10 XP, one streak day); the
/// meal's `times_used` and `last_used_at` follow. `NotFound`: no such user;
/// `None`: no such meal; `Rejected("portion")`: a scaled value would be
/// past a food entry's bounds.
#[derive(Debug, Clone)]
pub struct LogMeal {
    pub user_id: String,
    pub meal_id: String,
    pub at: DateTime<Utc>,
    pub portion: f64,
}

impl DbOperation for LogMeal {
    type Output = Option<LoggedMeal>;
    const NAME: &'static str = "log_meal";

    async fn run(self, client: &mut Client) -> Result<Option<LoggedMeal>, DbError> {
        let tx = client.transaction().await?;
        let tz = lock_user_tz(&tx, &self.user_id).await?;
        let logged = log_meal(&tx, &self.user_id, tz, &self.meal_id, self.at, self.portion).await?;
        if logged.is_some() {
            tx.commit().await?;
        }
        Ok(logged)
    }
}

/// [`LogMeal`] inside the caller's transaction (which holds the user's row
/// lock), for the chat's `log_meal` tool too.
pub(crate) async fn log_meal(
    tx: &Transaction<'_>,
    user_id: &str,
    tz: Tz,
    meal_id: &str,
    at: DateTime<Utc>,
    portion: f64,
) -> Result<Option<LoggedMeal>, DbError> {
    let rows = tx
        .query(
            concat!(
                "UPDATE saved_meals AS m SET times_used = m.times_used + 1, last_used_at = now()
                  WHERE m.id = $1::text::uuid AND m.user_id = $2
                  RETURNING ",
                meal_columns!()
            ),
            &[&meal_id, &user_id],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let meal = MealRow::from_row(row, 0)?;
    let mut entries = Vec::with_capacity(meal.foods.len());
    // In order: the entries' times and ids follow the meal's order.
    for food in &meal.foods {
        let entry = food.entry(portion, at)?;
        entries.push(insert_entry_row(tx, user_id, tz, &entry).await?);
    }
    let award = match entries.first() {
        // One event per log: keyed by its first entry, unique to this log.
        Some(first) => {
            let key = format!("meal:{}", first.id);
            award(tx, user_id, XpEvent::FoodLogged, &key, at, tz).await?
        }
        None => None,
    };
    Ok(Some(LoggedMeal {
        meal,
        entries,
        award,
    }))
}

/// What the suggestion rule reads: the user's food since `since` (their
/// local days) and the food keys of every saved meal; `NotFound` when the
/// user does not exist.
#[derive(Debug, Clone)]
pub struct GetMealHistory {
    pub user_id: String,
    pub since: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MealHistory {
    pub timezone: Tz,
    /// Oldest first.
    pub entries: Vec<FoodEntryRow>,
    pub saved: Vec<Vec<String>>,
}

impl DbOperation for GetMealHistory {
    type Output = MealHistory;
    const NAME: &'static str = "get_meal_history";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<MealHistory, DbError> {
        let (food, saved) = try_join(
            client.query(
                "SELECT u.profile->>'timezone', f.id::text, f.user_id, f.description, f.quantity,
                        f.food, f.grams, f.calories, f.protein_g, f.carbs_g, f.fat_g,
                        f.nutrition_source, f.logged_at, f.local_date
                   FROM users u
                   LEFT JOIN food_entries f ON f.user_id = u.user_id AND f.local_date >= $2
                  WHERE u.user_id = $1
                  ORDER BY f.logged_at, f.created_at",
                &[&self.user_id, &self.since],
            ),
            client.query(
                "SELECT food_keys FROM saved_meals WHERE user_id = $1",
                &[&self.user_id],
            ),
        )
        .await?;
        let first = food.first().ok_or(DbError::NotFound)?;
        Ok(MealHistory {
            timezone: timezone_named(first.get::<_, Option<&str>>(0)),
            entries: food
                .iter()
                .filter(|r| r.get::<_, Option<&str>>(1).is_some())
                .map(|r| FoodEntryRow::from_row(r, 1))
                .collect(),
            saved: saved.iter().map(|r| r.get(0)).collect(),
        })
    }
}
