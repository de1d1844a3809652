use actix_web::web;
use actors::db::ops::GetAchievements;
use chrono::{SecondsFormat, Utc};
use domain::gamification::{level_for_xp, ACHIEVEMENTS};
use domain::time::local_date;
use serde::Serialize;

use super::food::user_not_found;
use super::users::parse_user_id;
use crate::error::ApiResult;
use crate::reads;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct XpResponse {
    user_id: String,
    xp: i64,
    level: u32,
    tier: &'static str,
    xp_to_next_level: i64,
}

/// `GET /api/v1/users/{user_id}/xp`.
pub async fn xp(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<web::Json<XpResponse>> {
    let user_id = parse_user_id(&path)?.into_inner();
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

#[derive(Debug, Serialize)]
pub struct StreakResponse {
    #[serde(rename = "type")]
    kind: String,
    current: i32,
    best: i32,
}

#[derive(Debug, Serialize)]
pub struct StreaksResponse {
    user_id: String,
    streaks: Vec<StreakResponse>,
}

/// `GET /api/v1/users/{user_id}/streaks`.
pub async fn streaks(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<web::Json<StreaksResponse>> {
    let user_id = parse_user_id(&path)?.into_inner();
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

#[derive(Debug, Serialize)]
pub struct UnlockedAchievement {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    unlocked_at: String,
}

#[derive(Debug, Serialize)]
pub struct LockedAchievement {
    id: &'static str,
    name: &'static str,
    description: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AchievementsResponse {
    user_id: String,
    unlocked: Vec<UnlockedAchievement>,
    locked: Vec<LockedAchievement>,
}

/// `GET /api/v1/users/{user_id}/achievements`: unlocked in the order earned,
/// locked in display order.
pub async fn achievements(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<web::Json<AchievementsResponse>> {
    let user_id = parse_user_id(&path)?.into_inner();
    let earned = state
        .db
        .run(GetAchievements {
            user_id: user_id.clone(),
        })
        .await
        .map_err(user_not_found)?;
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
