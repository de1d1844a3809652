use actix_web::{get, web};
use actors::db::ops::GetAchievements;
use chrono::{SecondsFormat, Utc};
use domain::gamification::{level_for_xp, ACHIEVEMENTS};
use domain::time::local_date;
use serde::Serialize;
use utoipa::ToSchema;

use super::docs::UserPath;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::PathUser;
use crate::reads;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "user_id": "alice", "xp": 250, "level": 3, "tier": "bronze", "xp_to_next_level": 50
}))]
pub struct XpResponse {
    user_id: String,
    xp: i64,
    level: u32,
    /// `bronze` (levels 1–5), `silver` (6–15), `gold` (16–30), `platinum` (31+).
    tier: &'static str,
    /// What is left in the current level.
    xp_to_next_level: i64,
}

/// `GET /api/v1/users/{user_id}/xp`.
#[utoipa::path(
    tag = "gamification",
    params(UserPath),
    responses(
        (status = 200, description = "Total XP, level and tier.", body = XpResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/xp")]
pub async fn xp(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<XpResponse>> {
    let user_id = user_id.into_inner();
    let xp = reads::total_xp(&state, &user_id).await?;
    let level = level_for_xp(xp);
    Ok(web::Json(XpResponse {
        user_id,
        xp,
        level: level.level,
        tier: level.tier.as_str(),
        xp_to_next_level: level.xp_to_next_level,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreakResponse {
    /// `food_logging` or `reminders`.
    #[serde(rename = "type")]
    #[schema(example = "food_logging")]
    kind: String,
    /// Consecutive days up to today or yesterday, in the user's time zone.
    current: i32,
    best: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreaksResponse {
    user_id: String,
    streaks: Vec<StreakResponse>,
}

/// `GET /api/v1/users/{user_id}/streaks`.
#[utoipa::path(
    tag = "gamification",
    params(UserPath),
    responses(
        (status = 200, description = "Current and best streaks.", body = StreaksResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/streaks")]
pub async fn streaks(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<StreaksResponse>> {
    let user_id = user_id.into_inner();
    let (timezone, rows) = reads::streaks(&state, &user_id).await?;
    // A run whose last day is before yesterday is broken, whatever was stored.
    let yesterday = local_date(Utc::now(), timezone).pred_opt();
    let streaks = rows
        .into_iter()
        .map(|s| StreakResponse {
            current: match (s.last_date, yesterday) {
                (Some(last), Some(y)) if last >= y => s.current,
                _ => 0,
            },
            best: s.best,
            kind: s.streak_type,
        })
        .collect();
    Ok(web::Json(StreaksResponse { user_id, streaks }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnlockedAchievement {
    #[schema(example = "first_food")]
    id: &'static str,
    name: &'static str,
    description: &'static str,
    #[schema(format = DateTime)]
    unlocked_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LockedAchievement {
    id: &'static str,
    name: &'static str,
    description: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AchievementsResponse {
    user_id: String,
    unlocked: Vec<UnlockedAchievement>,
    locked: Vec<LockedAchievement>,
}

/// `GET /api/v1/users/{user_id}/achievements`: unlocked in the order earned,
/// locked in display order.
#[utoipa::path(
    tag = "gamification",
    params(UserPath),
    responses(
        (status = 200, description = "Unlocked (in the order earned) and locked.",
            body = AchievementsResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/achievements")]
pub async fn achievements(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<AchievementsResponse>> {
    let user_id = user_id.into_inner();
    let earned = state
        .db
        .run(GetAchievements {
            user_id: user_id.clone(),
        })
        .await
        .map_err(crate::error::ApiError::for_user)?;
    // Ids no longer defined are left out rather than shown without a name.
    let unlocked = earned
        .iter()
        .filter_map(|(id, at)| {
            let def = domain::gamification::achievement(id)?;
            Some(UnlockedAchievement {
                id: def.id,
                name: def.name,
                description: def.description,
                unlocked_at: at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            })
        })
        .collect();
    let locked = ACHIEVEMENTS
        .iter()
        .filter(|a| !earned.iter().any(|(id, _)| id == a.id))
        .map(|a| LockedAchievement {
            id: a.id,
            name: a.name,
            description: a.description,
        })
        .collect();
    Ok(web::Json(AchievementsResponse {
        user_id,
        unlocked,
        locked,
    }))
}
