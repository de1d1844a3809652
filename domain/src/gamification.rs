//! Gamification rules: XP per event, levels and tiers, streaks and achievements.
//!
//! Everything here is pure: callers load counts and dates from storage, and these
//! functions turn them into the numbers the API reports. Keeping the rules in one
//! place means the HTTP layer, the actors and the tests all agree on them.

use std::fmt;

use chrono::NaiveDate;

/// Something a user did that earns XP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XpEvent {
    FoodLogged,
    ReminderCompleted,
    ChatMessage,
}

impl XpEvent {
    /// Every event, for callers that need to enumerate them (e.g. metrics labels).
    pub const ALL: [XpEvent; 3] = [
        XpEvent::FoodLogged,
        XpEvent::ReminderCompleted,
        XpEvent::ChatMessage,
    ];

    /// XP awarded for one occurrence of the event.
    pub fn xp(self) -> i64 {
        match self {
            XpEvent::FoodLogged => 10,
            XpEvent::ReminderCompleted => 10,
            XpEvent::ChatMessage => 5,
        }
    }

    /// Stable identifier used in storage and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            XpEvent::FoodLogged => "food_logged",
            XpEvent::ReminderCompleted => "reminder_completed",
            XpEvent::ChatMessage => "chat_message",
        }
    }
}

/// Level tier; each tier has its own XP cost per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
    Platinum,
}

impl Tier {
    /// Lowercase name as it appears in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
            Tier::Platinum => "platinum",
        }
    }

    /// Tier of a given level (level 0 is treated as level 1).
    pub fn for_level(level: u32) -> Tier {
        band_for_level(level).tier
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A contiguous run of levels sharing one tier and one XP cost per level.
struct Band {
    tier: Tier,
    first_level: u32,
    /// Total XP at which `first_level` starts; must equal the end of the previous band
    /// (checked by a test, so the table can't silently drift from the rules).
    start_xp: i64,
    xp_per_level: i64,
}

/// Bronze 1–5 @100, Silver 6–15 @200, Gold 16–30 @500, Platinum 31+ @1000.
const BANDS: [Band; 4] = [
    Band {
        tier: Tier::Bronze,
        first_level: 1,
        start_xp: 0,
        xp_per_level: 100,
    },
    Band {
        tier: Tier::Silver,
        first_level: 6,
        start_xp: 500,
        xp_per_level: 200,
    },
    Band {
        tier: Tier::Gold,
        first_level: 16,
        start_xp: 2_500,
        xp_per_level: 500,
    },
    Band {
        tier: Tier::Platinum,
        first_level: 31,
        start_xp: 10_000,
        xp_per_level: 1_000,
    },
];

fn band_for_level(level: u32) -> &'static Band {
    BANDS
        .iter()
        .rev()
        .find(|b| level >= b.first_level)
        .unwrap_or(&BANDS[0])
}

fn band_for_xp(xp: i64) -> &'static Band {
    BANDS
        .iter()
        .rev()
        .find(|b| xp >= b.start_xp)
        .unwrap_or(&BANDS[0])
}

/// Where a total XP amount puts a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelInfo {
    pub level: u32,
    pub tier: Tier,
    /// XP earned since the current level started.
    pub xp_into_level: i64,
    /// XP still needed to reach the next level (0 only at the `u32::MAX` cap).
    pub xp_to_next_level: i64,
}

/// Total XP at which `level` starts. Level 0 is treated as level 1 (0 XP).
pub fn xp_for_level(level: u32) -> i64 {
    let level = level.max(1);
    let band = band_for_level(level);
    // At most ~4.3e12 for u32::MAX, far from i64 overflow.
    band.start_xp + i64::from(level - band.first_level) * band.xp_per_level
}

/// Level, tier and progress for a total XP amount.
///
/// Negative XP (which should never be stored, but a bad correction could produce it)
/// counts as 0. The level saturates at `u32::MAX`, which only XP near `i64::MAX`
/// reaches; there `xp_to_next_level` is 0 because no next level exists.
pub fn level_for_xp(xp: i64) -> LevelInfo {
    let xp = xp.max(0);
    let band = band_for_xp(xp);
    // xp >= start_xp, so this is non-negative and cannot overflow.
    let levels_into_band = (xp - band.start_xp) / band.xp_per_level;
    let level = u32::try_from(i64::from(band.first_level) + levels_into_band).unwrap_or(u32::MAX);
    let start = xp_for_level(level);
    let xp_to_next_level = match level.checked_add(1) {
        Some(next) => xp_for_level(next) - xp,
        None => 0,
    };
    LevelInfo {
        level,
        tier: band.tier,
        xp_into_level: xp - start,
        xp_to_next_level,
    }
}

/// Current and longest run of consecutive active days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Streak {
    pub current: u32,
    pub best: u32,
}

/// Streak over `days` (local dates with at least one qualifying action, any order,
/// duplicates allowed) as seen on `today`.
///
/// `current` is the run ending today or yesterday — yesterday still counts because
/// the user may simply not have acted yet today; a run ending earlier is broken.
/// Dates after `today` (clock skew, bad data) are ignored so they can't inflate either
/// number and `best >= current` always holds.
pub fn streak(days: &[NaiveDate], today: NaiveDate) -> Streak {
    let mut sorted: Vec<NaiveDate> = days.iter().copied().filter(|d| *d <= today).collect();
    sorted.sort_unstable();
    sorted.dedup();

    let mut best = 0u32;
    let mut run = 0u32;
    let mut prev: Option<NaiveDate> = None;
    for day in &sorted {
        run = match prev {
            Some(p) if p.succ_opt() == Some(*day) => run.saturating_add(1),
            _ => 1,
        };
        best = best.max(run);
        prev = Some(*day);
    }

    // `run` is now the length of the run ending at the latest date.
    let yesterday = today.pred_opt();
    let current = match prev {
        Some(last) if last == today || Some(last) == yesterday => run,
        _ => 0,
    };
    Streak { current, best }
}

/// Static description of an achievement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AchievementDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

/// All achievements, in display order.
pub const ACHIEVEMENTS: &[AchievementDef] = &[
    AchievementDef {
        id: "first_food",
        name: "First Bite",
        description: "Log your first food entry.",
    },
    AchievementDef {
        id: "food_streak_7",
        name: "Week of Logging",
        description: "Log food on 7 consecutive days.",
    },
    AchievementDef {
        id: "food_streak_30",
        name: "Month of Logging",
        description: "Log food on 30 consecutive days.",
    },
    AchievementDef {
        id: "first_reminder",
        name: "On Time",
        description: "Complete your first reminder.",
    },
    AchievementDef {
        id: "level_5",
        name: "Level 5",
        description: "Reach level 5.",
    },
    AchievementDef {
        id: "level_10",
        name: "Level 10",
        description: "Reach level 10.",
    },
    AchievementDef {
        id: "chat_100",
        name: "Chatterbox",
        description: "Send 100 chat messages.",
    },
];

/// Look up an achievement by id.
pub fn achievement(id: &str) -> Option<&'static AchievementDef> {
    ACHIEVEMENTS.iter().find(|a| a.id == id)
}

/// Lifetime counters that achievement conditions are evaluated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub total_xp: i64,
    pub food_entries: u64,
    pub reminders_completed: u64,
    pub chat_messages: u64,
    /// Longest food-logging streak ever (a best, so the achievement survives a break).
    pub best_food_streak: u32,
}

fn condition_holds(id: &str, p: &Progress) -> bool {
    match id {
        "first_food" => p.food_entries >= 1,
        "food_streak_7" => p.best_food_streak >= 7,
        "food_streak_30" => p.best_food_streak >= 30,
        "first_reminder" => p.reminders_completed >= 1,
        "level_5" => level_for_xp(p.total_xp).level >= 5,
        "level_10" => level_for_xp(p.total_xp).level >= 10,
        "chat_100" => p.chat_messages >= 100,
        // A definition without a condition never unlocks; a test catches that.
        _ => false,
    }
}

/// Ids of every achievement whose condition holds, in `ACHIEVEMENTS` order.
///
/// Callers diff this against what is already stored to find newly unlocked ones.
pub fn unlocked(progress: &Progress) -> Vec<&'static str> {
    ACHIEVEMENTS
        .iter()
        .filter(|a| condition_holds(a.id, progress))
        .map(|a| a.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn info(level: u32, tier: Tier, into: i64, to_next: i64) -> LevelInfo {
        LevelInfo {
            level,
            tier,
            xp_into_level: into,
            xp_to_next_level: to_next,
        }
    }

    #[test]
    fn xp_values_match_the_contract() {
        assert_eq!(XpEvent::FoodLogged.xp(), 10);
        assert_eq!(XpEvent::ReminderCompleted.xp(), 10);
        assert_eq!(XpEvent::ChatMessage.xp(), 5);
    }

    #[test]
    fn event_names_are_snake_case_and_distinct() {
        let names: Vec<_> = XpEvent::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names, ["food_logged", "reminder_completed", "chat_message"]);
    }

    #[test]
    fn tier_names_are_lowercase_and_display_matches() {
        for (tier, name) in [
            (Tier::Bronze, "bronze"),
            (Tier::Silver, "silver"),
            (Tier::Gold, "gold"),
            (Tier::Platinum, "platinum"),
        ] {
            assert_eq!(tier.as_str(), name);
            assert_eq!(tier.to_string(), name);
        }
    }

    #[test]
    fn band_table_is_contiguous_with_the_previous_band() {
        for pair in BANDS.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let end_of_a = a.start_xp + i64::from(b.first_level - a.first_level) * a.xp_per_level;
            assert_eq!(
                b.start_xp, end_of_a,
                "band starting at level {}",
                b.first_level
            );
        }
    }

    #[test]
    fn zero_xp_is_level_one_bronze() {
        assert_eq!(level_for_xp(0), info(1, Tier::Bronze, 0, 100));
    }

    #[test]
    fn ninety_nine_xp_is_level_one_with_one_to_go() {
        assert_eq!(level_for_xp(99), info(1, Tier::Bronze, 99, 1));
    }

    #[test]
    fn one_hundred_xp_is_level_two() {
        assert_eq!(level_for_xp(100), info(2, Tier::Bronze, 0, 100));
    }

    #[test]
    fn bronze_ends_at_level_five_and_silver_starts_at_five_hundred() {
        assert_eq!(level_for_xp(499), info(5, Tier::Bronze, 99, 1));
        assert_eq!(level_for_xp(500), info(6, Tier::Silver, 0, 200));
        assert_eq!(level_for_xp(700), info(7, Tier::Silver, 0, 200));
    }

    #[test]
    fn silver_ends_at_level_fifteen_and_gold_starts_at_2500() {
        assert_eq!(level_for_xp(2_499), info(15, Tier::Silver, 199, 1));
        assert_eq!(level_for_xp(2_500), info(16, Tier::Gold, 0, 500));
        assert_eq!(level_for_xp(3_000), info(17, Tier::Gold, 0, 500));
    }

    #[test]
    fn gold_ends_at_level_thirty_and_platinum_starts_at_10000() {
        assert_eq!(level_for_xp(9_999), info(30, Tier::Gold, 499, 1));
        assert_eq!(level_for_xp(10_000), info(31, Tier::Platinum, 0, 1_000));
        assert_eq!(level_for_xp(11_500), info(32, Tier::Platinum, 500, 500));
    }

    #[test]
    fn negative_xp_is_treated_as_zero() {
        assert_eq!(level_for_xp(-1), level_for_xp(0));
        assert_eq!(level_for_xp(i64::MIN), level_for_xp(0));
    }

    #[test]
    fn i64_max_xp_saturates_the_level_without_panicking() {
        let li = level_for_xp(i64::MAX);
        assert_eq!(li.level, u32::MAX);
        assert_eq!(li.tier, Tier::Platinum);
        assert_eq!(li.xp_to_next_level, 0);
        assert_eq!(li.xp_into_level, i64::MAX - xp_for_level(u32::MAX));
    }

    #[test]
    fn xp_for_level_matches_the_documented_thresholds() {
        for (level, xp) in [
            (0, 0),
            (1, 0),
            (2, 100),
            (5, 400),
            (6, 500),
            (7, 700),
            (10, 1_300),
            (15, 2_300),
            (16, 2_500),
            (17, 3_000),
            (30, 9_500),
            (31, 10_000),
            (32, 11_000),
        ] {
            assert_eq!(xp_for_level(level), xp, "level {level}");
        }
        assert_eq!(
            xp_for_level(u32::MAX),
            10_000 + i64::from(u32::MAX - 31) * 1_000
        );
    }

    #[test]
    fn level_for_xp_round_trips_with_xp_for_level() {
        for level in 1..=60u32 {
            let start = xp_for_level(level);
            let next = xp_for_level(level + 1);
            assert_eq!(level_for_xp(start).level, level);
            assert_eq!(level_for_xp(next - 1).level, level);
            let li = level_for_xp(start);
            assert_eq!(li.xp_into_level + li.xp_to_next_level, next - start);
            assert_eq!(li.tier, Tier::for_level(level));
        }
    }

    #[test]
    fn tier_for_level_changes_at_six_sixteen_and_thirty_one() {
        assert_eq!(Tier::for_level(0), Tier::Bronze);
        assert_eq!(Tier::for_level(5), Tier::Bronze);
        assert_eq!(Tier::for_level(6), Tier::Silver);
        assert_eq!(Tier::for_level(15), Tier::Silver);
        assert_eq!(Tier::for_level(16), Tier::Gold);
        assert_eq!(Tier::for_level(30), Tier::Gold);
        assert_eq!(Tier::for_level(31), Tier::Platinum);
    }

    #[test]
    fn empty_history_has_no_streak() {
        assert_eq!(
            streak(&[], d(2026, 6, 1)),
            Streak {
                current: 0,
                best: 0
            }
        );
    }

    #[test]
    fn activity_only_today_is_a_streak_of_one() {
        let today = d(2026, 6, 1);
        assert_eq!(
            streak(&[today], today),
            Streak {
                current: 1,
                best: 1
            }
        );
    }

    #[test]
    fn a_gap_day_splits_the_run_and_best_keeps_the_longer_one() {
        let today = d(2026, 6, 10);
        let days = [
            d(2026, 6, 1),
            d(2026, 6, 2),
            d(2026, 6, 3),
            // 4th missing
            d(2026, 6, 5),
            d(2026, 6, 6),
            // 7th–9th missing
            d(2026, 6, 10),
        ];
        assert_eq!(
            streak(&days, today),
            Streak {
                current: 1,
                best: 3
            }
        );
    }

    #[test]
    fn duplicates_and_unsorted_input_count_each_day_once() {
        let today = d(2026, 6, 3);
        let days = [
            d(2026, 6, 3),
            d(2026, 6, 1),
            d(2026, 6, 3),
            d(2026, 6, 2),
            d(2026, 6, 1),
        ];
        assert_eq!(
            streak(&days, today),
            Streak {
                current: 3,
                best: 3
            }
        );
    }

    #[test]
    fn run_ending_yesterday_is_still_current() {
        let today = d(2026, 6, 10);
        let days = [d(2026, 6, 7), d(2026, 6, 8), d(2026, 6, 9)];
        assert_eq!(
            streak(&days, today),
            Streak {
                current: 3,
                best: 3
            }
        );
    }

    #[test]
    fn run_ending_two_days_ago_is_broken() {
        let today = d(2026, 6, 10);
        let days = [d(2026, 6, 6), d(2026, 6, 7), d(2026, 6, 8)];
        assert_eq!(
            streak(&days, today),
            Streak {
                current: 0,
                best: 3
            }
        );
    }

    #[test]
    fn streak_crosses_month_and_leap_day_boundaries() {
        let today = d(2028, 3, 1);
        let days = [d(2028, 2, 28), d(2028, 2, 29), d(2028, 3, 1)];
        assert_eq!(
            streak(&days, today),
            Streak {
                current: 3,
                best: 3
            }
        );
    }

    #[test]
    fn future_dates_are_ignored() {
        let today = d(2026, 6, 10);
        let days = [d(2026, 6, 10), d(2026, 6, 11), d(2026, 6, 12)];
        assert_eq!(
            streak(&days, today),
            Streak {
                current: 1,
                best: 1
            }
        );
    }

    #[test]
    fn achievement_ids_are_unique_and_described() {
        let ids: HashSet<_> = ACHIEVEMENTS.iter().map(|a| a.id).collect();
        assert_eq!(ids.len(), ACHIEVEMENTS.len());
        for a in ACHIEVEMENTS {
            assert!(!a.name.is_empty() && !a.description.is_empty(), "{}", a.id);
        }
        for id in [
            "first_food",
            "food_streak_7",
            "food_streak_30",
            "first_reminder",
            "level_5",
            "level_10",
            "chat_100",
        ] {
            assert_eq!(achievement(id).map(|a| a.id), Some(id));
        }
        assert!(achievement("nope").is_none());
    }

    #[test]
    fn fresh_user_has_no_achievements() {
        assert!(unlocked(&Progress::default()).is_empty());
    }

    #[test]
    fn maxed_progress_unlocks_every_achievement() {
        // Guards against a definition being added without a condition.
        let p = Progress {
            total_xp: i64::MAX,
            food_entries: u64::MAX,
            reminders_completed: u64::MAX,
            chat_messages: u64::MAX,
            best_food_streak: u32::MAX,
        };
        let all: Vec<_> = ACHIEVEMENTS.iter().map(|a| a.id).collect();
        assert_eq!(unlocked(&p), all);
    }

    #[test]
    fn level_5_unlocks_at_exactly_400_xp_and_not_at_399() {
        let at = |xp| {
            unlocked(&Progress {
                total_xp: xp,
                ..Progress::default()
            })
        };
        assert!(!at(399).contains(&"level_5"));
        assert_eq!(at(400), vec!["level_5"]);
    }

    #[test]
    fn level_10_unlocks_at_1300_xp() {
        let at = |xp| {
            unlocked(&Progress {
                total_xp: xp,
                ..Progress::default()
            })
        };
        assert_eq!(at(1_299), vec!["level_5"]);
        assert_eq!(at(1_300), vec!["level_5", "level_10"]);
    }

    #[test]
    fn count_based_achievements_unlock_at_their_thresholds() {
        let base = Progress::default();
        let ids = |p: Progress| unlocked(&p);
        assert_eq!(
            ids(Progress {
                food_entries: 1,
                ..base
            }),
            vec!["first_food"]
        );
        assert_eq!(
            ids(Progress {
                reminders_completed: 1,
                ..base
            }),
            vec!["first_reminder"]
        );
        assert!(ids(Progress {
            chat_messages: 99,
            ..base
        })
        .is_empty());
        assert_eq!(
            ids(Progress {
                chat_messages: 100,
                ..base
            }),
            vec!["chat_100"]
        );
    }

    #[test]
    fn food_streak_achievements_use_the_best_streak() {
        let p = |s| Progress {
            food_entries: 1,
            best_food_streak: s,
            ..Progress::default()
        };
        assert_eq!(unlocked(&p(6)), vec!["first_food"]);
        assert_eq!(unlocked(&p(7)), vec!["first_food", "food_streak_7"]);
        assert_eq!(unlocked(&p(29)), vec!["first_food", "food_streak_7"]);
        assert_eq!(
            unlocked(&p(30)),
            vec!["first_food", "food_streak_7", "food_streak_30"]
        );
    }
}
