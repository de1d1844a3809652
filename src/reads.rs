//! Reads that go through the cache, and the invalidations every write path
//! calls after its transaction committed. Keys and TTLs: `cache_keys`.

use actors::db::ops::conversation::{GetHistory, HistoryTurn};
use actors::db::ops::{GetFoodDay, GetStreaks, GetUser, GetXp, StreakRow};
use actors::db::{DbError, DbHandle};
use std::future::Future;
use std::time::Duration;

use actors::cache::Refill;
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache_keys as keys;
use crate::error::{ApiError, ApiResult};
use crate::routes::FoodDayResponse;
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
        self.profile
            .get("timezone")
            .and_then(Value::as_str)
            .and_then(|t| domain::time::parse_timezone(t).ok())
            .unwrap_or(chrono_tz::UTC)
    }
}

/// The user, or 404. Deleting a user invalidates this entry, so every read
/// that starts here stops seeing a deleted user at once.
pub async fn user(state: &AppState, user_id: &str) -> ApiResult<CachedUser> {
    state
        .cache
        .get_or_load(&keys::user(user_id), keys::PROFILE_TTL, || {
            load_user(state.db.clone(), user_id.to_owned())
        })
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
    state
        .cache
        .get_or_load(&keys::xp(user_id), keys::GAMIFICATION_TTL, || {
            load_xp(state.db.clone(), user_id.to_owned())
        })
        .await
        .map_err(ApiError::for_user)
}

async fn load_xp(db: DbHandle, user_id: String) -> Result<i64, DbError> {
    db.run(GetXp { user_id }).await
}

/// Stored streak rows and the timezone their days are counted in.
pub async fn streaks(state: &AppState, user_id: &str) -> ApiResult<(Tz, Vec<StreakRow>)> {
    let (tz, rows) = state
        .cache
        .get_or_load(&keys::streaks(user_id), keys::GAMIFICATION_TTL, || {
            load_streaks(state.db.clone(), user_id.to_owned())
        })
        .await
        .map_err(ApiError::for_user)?;
    Ok((
        domain::time::parse_timezone(&tz).unwrap_or(chrono_tz::UTC),
        rows,
    ))
}

async fn load_streaks(db: DbHandle, user_id: String) -> Result<(String, Vec<StreakRow>), DbError> {
    let s = db.run(GetStreaks { user_id }).await?;
    Ok((s.timezone.name().to_owned(), s.rows))
}

/// One local day of the user's food log.
pub async fn food_day(
    state: &AppState,
    user_id: &str,
    date: NaiveDate,
) -> ApiResult<FoodDayResponse> {
    state
        .cache
        .get_or_load(
            &keys::food_day(user_id, &date.to_string()),
            keys::FOOD_DAY_TTL,
            || load_food_day(state.db.clone(), user_id.to_owned(), date),
        )
        .await
        .map_err(ApiError::for_user)
}

async fn load_food_day(
    db: DbHandle,
    user_id: String,
    date: NaiveDate,
) -> Result<FoodDayResponse, DbError> {
    let day = db
        .run(GetFoodDay {
            user_id,
            date: Some(date),
        })
        .await?;
    Ok(FoodDayResponse::from(day))
}

/// The newest `keys::HISTORY_WINDOW` messages, oldest first (empty for a
/// new user).
pub async fn history(state: &AppState, user_id: &str) -> ApiResult<Vec<HistoryTurn>> {
    Ok(state
        .cache
        .get_or_load(&keys::history(user_id), keys::HISTORY_TTL, || {
            load_history(state.db.clone(), user_id.to_owned())
        })
        .await?)
}

async fn load_history(db: DbHandle, user_id: String) -> Result<Vec<HistoryTurn>, DbError> {
    db.run(GetHistory {
        user_id,
        limit: keys::HISTORY_WINDOW,
    })
    .await
}

/// A `Refill` of `key` by `load(db, user_id)`.
fn refill<T, Fut>(
    state: &AppState,
    user_id: &str,
    key: String,
    ttl: Duration,
    load: impl Fn(DbHandle, String) -> Fut + 'static,
) -> Refill
where
    T: Serialize,
    Fut: Future<Output = Result<T, DbError>> + 'static,
{
    let (db, user_id) = (state.db.clone(), user_id.to_owned());
    Refill::new(key, ttl, move || load(db.clone(), user_id.clone()))
}

/// What a write changed, to be written through to the cache; a value the
/// writer already holds is stored as is instead of being reloaded.
enum Changed {
    User,
    History(Option<Vec<HistoryTurn>>),
    Xp(Option<i64>),
    Streaks,
    FoodDay(NaiveDate),
}

async fn refresh(state: &AppState, user_id: &str, changed: Vec<Changed>) {
    let refills = changed
        .into_iter()
        .map(|c| match c {
            Changed::User => refill(
                state,
                user_id,
                keys::user(user_id),
                keys::PROFILE_TTL,
                load_user,
            ),
            Changed::History(known) => refill(
                state,
                user_id,
                keys::history(user_id),
                keys::HISTORY_TTL,
                load_history,
            )
            .known(known.as_ref()),
            Changed::Xp(known) => refill(
                state,
                user_id,
                keys::xp(user_id),
                keys::GAMIFICATION_TTL,
                load_xp,
            )
            .known(known.as_ref()),
            Changed::Streaks => refill(
                state,
                user_id,
                keys::streaks(user_id),
                keys::GAMIFICATION_TTL,
                load_streaks,
            ),
            Changed::FoodDay(date) => refill(
                state,
                user_id,
                keys::food_day(user_id, &date.to_string()),
                keys::FOOD_DAY_TTL,
                move |db, u| load_food_day(db, u, date),
            ),
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

/// After a chat exchange was stored: the new window and XP total when the
/// route knows them. A chat moves no streak.
pub async fn refresh_chat(
    state: &AppState,
    user_id: &str,
    window: Option<Vec<HistoryTurn>>,
    total_xp: Option<i64>,
) {
    use Changed::*;
    refresh(state, user_id, vec![History(window), Xp(total_xp)]).await;
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
