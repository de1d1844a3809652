//! Reads that go through the cache, and the invalidations every write path
//! calls after its transaction committed. Keys and TTLs: `cache_keys`.

use actors::db::ops::conversation::{GetHistory, HistoryTurn};
use actors::db::ops::{GetFoodDay, GetStreaks, GetUser, GetXp, StreakRow};
use actors::db::DbError;
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
        .get_or_load(&keys::user(user_id), keys::PROFILE_TTL, || async {
            let row = state
                .db
                .run(GetUser {
                    user_id: user_id.to_owned(),
                })
                .await?
                .ok_or(DbError::NotFound)?;
            Ok(CachedUser {
                user_id: row.user_id,
                profile: row.profile,
                preferences: row.preferences,
            })
        })
        .await
        .map_err(ApiError::for_user)
}

pub async fn total_xp(state: &AppState, user_id: &str) -> ApiResult<i64> {
    state
        .cache
        .get_or_load(&keys::xp(user_id), keys::GAMIFICATION_TTL, || {
            state.db.run(GetXp {
                user_id: user_id.to_owned(),
            })
        })
        .await
        .map_err(ApiError::for_user)
}

/// Stored streak rows and the timezone their days are counted in.
pub async fn streaks(state: &AppState, user_id: &str) -> ApiResult<(Tz, Vec<StreakRow>)> {
    let (tz, rows): (String, Vec<StreakRow>) = state
        .cache
        .get_or_load(&keys::streaks(user_id), keys::GAMIFICATION_TTL, || async {
            let s = state
                .db
                .run(GetStreaks {
                    user_id: user_id.to_owned(),
                })
                .await?;
            Ok((s.timezone.name().to_owned(), s.rows))
        })
        .await
        .map_err(ApiError::for_user)?;
    Ok((
        domain::time::parse_timezone(&tz).unwrap_or(chrono_tz::UTC),
        rows,
    ))
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
            || async {
                let day = state
                    .db
                    .run(GetFoodDay {
                        user_id: user_id.to_owned(),
                        date: Some(date),
                    })
                    .await?;
                Ok(FoodDayResponse::from(day))
            },
        )
        .await
        .map_err(ApiError::for_user)
}

/// The newest `limit` messages, oldest first (empty for a new user).
pub async fn history(state: &AppState, user_id: &str, limit: i64) -> ApiResult<Vec<HistoryTurn>> {
    Ok(state
        .cache
        .get_or_load(&keys::history(user_id), keys::HISTORY_TTL, || {
            state.db.run(GetHistory {
                user_id: user_id.to_owned(),
                limit,
            })
        })
        .await?)
}

/// After a profile or preference change.
pub async fn forget_user(state: &AppState, user_id: &str) {
    state
        .cache
        .invalidate(&[keys::user(user_id), keys::streaks(user_id)])
        .await;
}

/// After the user and all their rows were deleted.
pub async fn forget_everything(state: &AppState, user_id: &str) {
    state.cache.invalidate(&keys::all_for_user(user_id)).await;
}

/// After XP was awarded (food, reminder, chat).
pub async fn forget_awards(state: &AppState, user_id: &str) {
    state
        .cache
        .invalidate(&[keys::xp(user_id), keys::streaks(user_id)])
        .await;
}

/// After a food entry on `date` (the user's local day), with its XP.
pub async fn forget_food(state: &AppState, user_id: &str, date: &str) {
    state
        .cache
        .invalidate(&[
            keys::food_day(user_id, date),
            keys::xp(user_id),
            keys::streaks(user_id),
        ])
        .await;
}
