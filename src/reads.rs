//! Reads that go through the cache, and what every write path calls after
//! its transaction committed: write-through (`refresh_*`), or invalidation
//! for deletes. Both use one loader per entry. Keys and TTLs: `cache_keys`.

use std::future::Future;

use actors::cache::Refill;
use actors::db::ops::conversation::{GetHistory, HistoryTurn};
use actors::db::ops::{
    FoodDay, GetFoodDay, GetStreaks, GetUser, GetXp, ListMeals, MealRow, StreakRow,
};
use actors::db::{DbError, DbHandle};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache_keys::{self as keys, Key};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A user's profile and preferences as cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedUser {
    pub user_id: String,
    pub profile: Value,
    pub preferences: Value,
}

impl CachedUser {
    pub fn timezone(&self) -> Tz {
        domain::profile::timezone(&self.profile)
    }
}

/// The user, or 404. Deleting a user invalidates this entry, so every read
/// that starts here stops seeing a deleted user at once.
pub async fn user(state: &AppState, user_id: &str) -> ApiResult<CachedUser> {
    cached(state, user_id, keys::user(user_id), load_user)
        .await
        .map_err(ApiError::for_user)
}

async fn load_user(db: DbHandle, user_id: String) -> Result<CachedUser, DbError> {
    let row = db
        .run(GetUser { user_id })
        .await?
        .ok_or(DbError::NotFound)?;
    Ok(CachedUser {
        user_id: row.user_id,
        profile: row.profile,
        preferences: row.preferences,
    })
}

pub async fn total_xp(state: &AppState, user_id: &str) -> ApiResult<i64> {
    cached(state, user_id, keys::xp(user_id), load_xp)
        .await
        .map_err(ApiError::for_user)
}

async fn load_xp(db: DbHandle, user_id: String) -> Result<i64, DbError> {
    db.run(GetXp { user_id }).await
}

/// Stored streak rows and the timezone their days are counted in.
pub async fn streaks(state: &AppState, user_id: &str) -> ApiResult<(Tz, Vec<StreakRow>)> {
    let (tz, rows) = cached(state, user_id, keys::streaks(user_id), load_streaks)
        .await
        .map_err(ApiError::for_user)?;
    Ok((domain::profile::timezone_named(Some(&tz)), rows))
}

async fn load_streaks(db: DbHandle, user_id: String) -> Result<(String, Vec<StreakRow>), DbError> {
    let s = db.run(GetStreaks { user_id }).await?;
    Ok((s.timezone.name().to_owned(), s.rows))
}

/// One local day of the user's food log.
pub async fn food_day(state: &AppState, user_id: &str, date: NaiveDate) -> ApiResult<FoodDay> {
    cached(
        state,
        user_id,
        keys::food_day(user_id, &date.to_string()),
        move |db, u| load_food_day(db, u, date),
    )
    .await
    .map_err(ApiError::for_user)
}

async fn load_food_day(db: DbHandle, user_id: String, date: NaiveDate) -> Result<FoodDay, DbError> {
    db.run(GetFoodDay {
        user_id,
        date: Some(date),
    })
    .await
}

/// The user's saved meals, most used first; 404 for an unknown user.
pub async fn meals(state: &AppState, user_id: &str) -> ApiResult<Vec<MealRow>> {
    cached(state, user_id, keys::meals(user_id), load_meals)
        .await
        .map_err(ApiError::for_user)
}

async fn load_meals(db: DbHandle, user_id: String) -> Result<Vec<MealRow>, DbError> {
    db.run(ListMeals { user_id }).await
}

/// The newest `keys::HISTORY_WINDOW` messages, oldest first (empty for a
/// new user).
pub async fn history(state: &AppState, user_id: &str) -> ApiResult<Vec<HistoryTurn>> {
    Ok(cached(state, user_id, keys::history(user_id), load_history).await?)
}

async fn load_history(db: DbHandle, user_id: String) -> Result<Vec<HistoryTurn>, DbError> {
    db.run(GetHistory {
        user_id,
        limit: keys::HISTORY_WINDOW,
    })
    .await
}

/// A read of `key` through the cache; on a miss, `load(db, user_id)`.
async fn cached<T, Fut>(
    state: &AppState,
    user_id: &str,
    key: Key,
    load: impl Fn(DbHandle, String) -> Fut,
) -> Result<T, DbError>
where
    T: Serialize + DeserializeOwned,
    Fut: Future<Output = Result<T, DbError>>,
{
    let db = &state.db;
    state
        .cache
        .get_or_load(&key.name, key.ttl, || load(db.clone(), user_id.to_owned()))
        .await
}

/// A `Refill` of `key` by `load(db, user_id)`, read from the primary: it
/// runs after a write, which the replica may not have replayed yet.
fn refill<T, Fut>(
    state: &AppState,
    user_id: &str,
    key: Key,
    load: impl Fn(DbHandle, String) -> Fut + 'static,
) -> Refill
where
    T: Serialize,
    Fut: Future<Output = Result<T, DbError>> + 'static,
{
    let (db, user_id) = (state.db.primary(), user_id.to_owned());
    Refill::new(key.name, key.ttl, move || load(db.clone(), user_id.clone()))
}

/// What a write changed, to be written through to the cache; a value the
/// writer already holds is stored as is instead of being reloaded.
enum Changed {
    User,
    History(Option<Vec<HistoryTurn>>),
    Xp(Option<i64>),
    Streaks,
    FoodDay(NaiveDate),
    Meals,
}

async fn refresh(state: &AppState, user_id: &str, changed: Vec<Changed>) {
    let refills = changed
        .into_iter()
        .map(|c| match c {
            Changed::User => refill(state, user_id, keys::user(user_id), load_user),
            Changed::History(known) => {
                refill(state, user_id, keys::history(user_id), load_history).known(known.as_ref())
            }
            Changed::Xp(known) => {
                refill(state, user_id, keys::xp(user_id), load_xp).known(known.as_ref())
            }
            Changed::Streaks => refill(state, user_id, keys::streaks(user_id), load_streaks),
            Changed::FoodDay(date) => refill(
                state,
                user_id,
                keys::food_day(user_id, &date.to_string()),
                move |db, u| load_food_day(db, u, date),
            ),
            Changed::Meals => refill(state, user_id, keys::meals(user_id), load_meals),
        })
        .collect();
    state.cache.refresh(refills).await;
}

/// After a user was created: what a first request reads is stored already.
pub async fn refresh_new_user(state: &AppState, user_id: &str) {
    use Changed::*;
    refresh(state, user_id, vec![User, History(None), Xp(None), Streaks]).await;
}

/// After a profile or preference change (the timezone moves streak days).
pub async fn refresh_user(state: &AppState, user_id: &str) {
    refresh(state, user_id, vec![Changed::User, Changed::Streaks]).await;
}

/// After XP was awarded (a reminder completed).
pub async fn refresh_awards(state: &AppState, user_id: &str) {
    refresh(state, user_id, vec![Changed::Xp(None), Changed::Streaks]).await;
}

/// After a food entry on `date` (the user's local day), with its XP.
pub async fn refresh_food(state: &AppState, user_id: &str, date: NaiveDate) {
    use Changed::*;
    refresh(state, user_id, vec![FoodDay(date), Xp(None), Streaks]).await;
}

/// After a saved meal was created, changed or deleted.
pub async fn refresh_meals(state: &AppState, user_id: &str) {
    refresh(state, user_id, vec![Changed::Meals]).await;
}

/// After a saved meal was logged: its foods on `date`, the XP, the streak
/// and the meal's use count.
pub async fn refresh_meal_log(state: &AppState, user_id: &str, date: NaiveDate) {
    use Changed::*;
    refresh(
        state,
        user_id,
        vec![FoodDay(date), Xp(None), Streaks, Meals],
    )
    .await;
}

/// After a chat exchange was stored: the new window and XP total when the
/// route knows them, and the days its tools logged food on (a chat alone
/// moves no streak).
pub async fn refresh_chat(
    state: &AppState,
    user_id: &str,
    window: Option<Vec<HistoryTurn>>,
    total_xp: Option<i64>,
    food_days: &[NaiveDate],
    meals_logged: bool,
) {
    use Changed::*;
    let mut changed = vec![History(window), Xp(total_xp)];
    if meals_logged {
        changed.push(Meals);
    }
    if !food_days.is_empty() {
        let mut days = food_days.to_vec();
        days.sort_unstable();
        days.dedup();
        changed.push(Streaks);
        changed.extend(days.into_iter().map(FoodDay));
    }
    refresh(state, user_id, changed).await;
}

/// The stored window after appending `added` (oldest first).
pub fn extend_window(mut window: Vec<HistoryTurn>, added: [HistoryTurn; 2]) -> Vec<HistoryTurn> {
    window.extend(added);
    let excess = window.len().saturating_sub(keys::HISTORY_WINDOW as usize);
    window.drain(..excess);
    window
}

/// After the user and all their rows were deleted.
pub async fn forget_everything(state: &AppState, user_id: &str) {
    state.cache.invalidate(&keys::all_for_user(user_id)).await;
}
