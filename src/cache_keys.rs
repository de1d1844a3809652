//! Every cache key in one place, so writers invalidate exactly what readers
//! cache. Keys are relative: the cache prefixes them with `<namespace>:v1:`.

use std::time::Duration;

pub const PROFILE_TTL: Duration = Duration::from_secs(3600);
pub const HISTORY_TTL: Duration = Duration::from_secs(30 * 60);
pub const FOOD_DAY_TTL: Duration = Duration::from_secs(3600);
pub const GAMIFICATION_TTL: Duration = Duration::from_secs(3600);
/// Messages in the cached conversation window.
pub const HISTORY_WINDOW: i64 = 20;

/// The user row: profile and preferences (invalidated on update or delete).
pub fn user(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The conversation window (invalidated on a new message or a clear).
pub fn history(user_id: &str) -> String {
    format!("history:{user_id}")
}

/// One local day of food (invalidated on a new entry for that user).
pub fn food_day(user_id: &str, date: &str) -> String {
    format!("food:{user_id}:{date}")
}

/// XP, level and streaks (invalidated on every award).
pub fn xp(user_id: &str) -> String {
    format!("xp:{user_id}")
}

pub fn streaks(user_id: &str) -> String {
    format!("streaks:{user_id}")
}

/// Everything cached about a user, for deletes.
pub fn all_for_user(user_id: &str) -> Vec<String> {
    vec![
        user(user_id),
        history(user_id),
        xp(user_id),
        streaks(user_id),
    ]
}
