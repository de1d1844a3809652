//! Every cache key in one place, with its time to live, so readers and
//! writers store and replace exactly the same entries. Keys are relative:
//! the cache prefixes them with `<namespace>:v1:`.

use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);
/// Messages in the cached conversation window.
pub const HISTORY_WINDOW: i64 = 20;

/// A cache entry's key and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub ttl: Duration,
}

fn key(name: String, ttl: Duration) -> Key {
    Key { name, ttl }
}

/// The user row: profile and preferences.
pub fn user(user_id: &str) -> Key {
    key(format!("user:{user_id}"), HOUR)
}

/// The conversation window.
pub fn history(user_id: &str) -> Key {
    key(format!("history:{user_id}"), Duration::from_secs(30 * 60))
}

/// One local day of food.
pub fn food_day(user_id: &str, date: &str) -> Key {
    key(format!("food:{user_id}:{date}"), HOUR)
}

/// The XP total.
pub fn xp(user_id: &str) -> Key {
    key(format!("xp:{user_id}"), HOUR)
}

/// Streak rows and the timezone their days are counted in.
pub fn streaks(user_id: &str) -> Key {
    key(format!("streaks:{user_id}"), HOUR)
}

/// The saved meals, most used first.
pub fn meals(user_id: &str) -> Key {
    key(format!("meals:{user_id}"), HOUR)
}

/// Everything cached about a user, for deletes.
pub fn all_for_user(user_id: &str) -> Vec<String> {
    [user, history, xp, streaks, meals]
        .iter()
        .map(|k| k(user_id).name)
        .collect()
}
