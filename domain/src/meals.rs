//! Saved meals: which foods count as "the same", when a meal is eaten, which
//! repeated combinations are worth suggesting, and which saved meal a
//! sentence ("I had my usual breakfast") names.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Timelike};

/// Repetitions in the window before a combination is suggested.
pub const MIN_OCCURRENCES: usize = 3;
/// Days looked back, today included.
pub const WINDOW_DAYS: i64 = 14;
/// Foods in a suggested combination: at least a pair, at most a meal's worth.
pub const MIN_FOODS: usize = 2;
pub const MAX_FOODS: usize = 12;

/// When in the day a food was eaten, by the user's local hour:
/// breakfast 05:00–10:59, lunch 11:00–14:59, afternoon snack 15:00–16:59,
/// dinner 17:00–21:59, late snack 22:00–04:59 (filed under the day it is
/// eaten on, like every food entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MealTime {
    Breakfast,
    Lunch,
    Snack,
    Dinner,
    LateSnack,
}

impl MealTime {
    pub fn from_hour(hour: u32) -> Self {
        match hour {
            5..=10 => MealTime::Breakfast,
            11..=14 => MealTime::Lunch,
            15..=16 => MealTime::Snack,
            17..=21 => MealTime::Dinner,
            _ => MealTime::LateSnack,
        }
    }

    pub fn of(local: impl Timelike) -> Self {
        Self::from_hour(local.hour())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MealTime::Breakfast => "breakfast",
            MealTime::Lunch => "lunch",
            MealTime::Snack => "snack",
            MealTime::Dinner => "dinner",
            MealTime::LateSnack => "late snack",
        }
    }
}

/// What makes two logged foods "the same food": the nutrition table's name
/// when the food was recognised ("2 bananas" and "banana" → `banana`), else
/// the description, lowercased with its spaces collapsed.
pub fn food_key(matched_food: Option<&str>, description: &str) -> String {
    match matched_food {
        Some(f) if !f.trim().is_empty() => normalise(f),
        _ => normalise(description),
    }
}

fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// One logged food, as the suggestion rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedFood {
    pub key: String,
    pub local_date: NaiveDate,
    pub meal_time: MealTime,
}

/// A combination of foods the user keeps eating together.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Sorted food keys.
    pub foods: Vec<String>,
    /// Meals (a day's meal time) in the window that held all of them.
    pub occurrences: usize,
    /// Of the meals that held any of these foods, the share that held all
    /// of them (0–1, two decimals): eaten together, not just often.
    pub confidence: f64,
    /// The meal time they were eaten at most often (the earliest on a tie).
    pub meal_time: MealTime,
    pub name: String,
}

/// Combinations of at least [`MIN_FOODS`] foods eaten together in one meal
/// (same local day and meal time) at least [`MIN_OCCURRENCES`] times in the
/// [`WINDOW_DAYS`] days up to `today`, not saved yet (`saved` holds each
/// saved meal's food keys). Only the largest combination of a recurring meal
/// is offered (its pairs recur as often, but are not the meal). Best first.
pub fn suggest(
    logged: &[LoggedFood],
    saved: &[BTreeSet<String>],
    today: NaiveDate,
) -> Vec<Suggestion> {
    let since = today - chrono::Duration::days(WINDOW_DAYS - 1);
    let mut meals: BTreeMap<(NaiveDate, MealTime), BTreeSet<&str>> = BTreeMap::new();
    for f in logged
        .iter()
        .filter(|f| f.local_date >= since && f.local_date <= today)
    {
        meals
            .entry((f.local_date, f.meal_time))
            .or_default()
            .insert(f.key.as_str());
    }
    // Candidates: each meal's whole set of foods, and where two meals share
    // part of their foods, that shared part (a usual breakfast plus a juice
    // one day is still the usual breakfast).
    let sets: Vec<&BTreeSet<&str>> = meals.values().collect();
    let mut candidates: BTreeSet<BTreeSet<&str>> = BTreeSet::new();
    for (i, a) in sets.iter().enumerate() {
        candidates.insert((*a).clone());
        for b in &sets[i + 1..] {
            candidates.insert(a.intersection(b).copied().collect());
        }
    }
    let mut found: Vec<(BTreeSet<&str>, Vec<MealTime>)> = candidates
        .into_iter()
        .filter(|c| (MIN_FOODS..=MAX_FOODS).contains(&c.len()))
        .filter_map(|c| {
            let times: Vec<MealTime> = meals
                .iter()
                .filter(|(_, foods)| c.is_subset(foods))
                .map(|((_, t), _)| *t)
                .collect();
            (times.len() >= MIN_OCCURRENCES).then_some((c, times))
        })
        .collect();
    // A part of a larger recurring combination that recurs no more often
    // is that combination, not a meal of its own.
    let maximal: Vec<bool> = found
        .iter()
        .map(|(c, t)| {
            !found
                .iter()
                .any(|(d, u)| d.len() > c.len() && c.is_subset(d) && u.len() >= t.len())
        })
        .collect();
    let mut keep = maximal.iter();
    found.retain(|_| *keep.next().unwrap_or(&false));
    let saved: Vec<BTreeSet<&str>> = saved
        .iter()
        .map(|s| s.iter().map(String::as_str).collect())
        .collect();
    found.retain(|(c, _)| !saved.contains(c));

    let mut out: Vec<Suggestion> = found
        .into_iter()
        .map(|(c, times)| {
            let any = meals
                .values()
                .filter(|foods| foods.iter().any(|f| c.contains(f)))
                .count();
            let confidence = (times.len() as f64 / any.max(1) as f64 * 100.0).round() / 100.0;
            let mut by_time: BTreeMap<MealTime, usize> = BTreeMap::new();
            for t in &times {
                *by_time.entry(*t).or_default() += 1;
            }
            let meal_time = by_time
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(t, _)| *t)
                .unwrap_or(MealTime::Snack);
            Suggestion {
                foods: c.iter().map(|s| s.to_string()).collect(),
                occurrences: times.len(),
                confidence,
                meal_time,
                name: String::new(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(b.occurrences.cmp(&a.occurrences))
            .then(b.foods.len().cmp(&a.foods.len()))
            .then(a.foods.cmp(&b.foods))
    });
    // The best of each meal time is the "usual" one; others say their foods.
    let mut named: BTreeSet<MealTime> = BTreeSet::new();
    for s in &mut out {
        s.name = if named.insert(s.meal_time) {
            format!("Usual {}", s.meal_time.as_str())
        } else {
            let mut name = format!(
                "{}: {}",
                capitalise(s.meal_time.as_str()),
                s.foods.join(", ")
            );
            if name.chars().count() > 200 {
                name = name.chars().take(199).collect::<String>() + "…";
            }
            name
        };
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A stable id for a suggestion: its foods, hashed (FNV-1a, 64 bits).
pub fn suggestion_id(foods: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, f) in foods.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in f.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Words that name nothing: "I had my usual breakfast" names "usual breakfast".
const FILLER: &[&str] = &[
    "a", "an", "the", "my", "our", "i", "i'm", "had", "have", "ate", "eat", "eaten", "just",
    "again", "today", "log", "please", "for", "of", "and", "with", "me", "this", "morning",
];

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `needle`'s words occur in `hay` in order, side by side.
fn contains_phrase(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Which of `meals` (name, keywords) `text` names: every meaningful word
/// of a meal's name side by side ("my usual breakfast" names "Usual
/// breakfast"), else one of its keywords as a whole word or phrase. The
/// longest name wins, then a keyword; `None` when nothing or a tie matches.
pub fn recognise<'a>(
    text: &str,
    meals: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> Option<usize> {
    let said = words(text);
    let meaningful = |s: &str| -> Vec<String> {
        words(s)
            .into_iter()
            .filter(|w| !FILLER.contains(&w.as_str()))
            .collect()
    };
    let said_meaningful: Vec<String> = said
        .iter()
        .filter(|w| !FILLER.contains(&w.as_str()))
        .cloned()
        .collect();
    // (score, index): a name scores its word count × 10, a keyword its words.
    let mut best: Option<(usize, usize)> = None;
    let mut tie = false;
    for (i, (name, keywords)) in meals.into_iter().enumerate() {
        let name_words = meaningful(name);
        let mut score = 0;
        if contains_phrase(&said_meaningful, &name_words) || contains_phrase(&said, &words(name)) {
            score = 10 * name_words.len().max(1);
        } else if let Some(k) = keywords
            .iter()
            .map(|k| words(k))
            .filter(|k| contains_phrase(&said, k))
            .map(|k| k.len())
            .max()
        {
            score = k;
        }
        if score == 0 {
            continue;
        }
        match best {
            Some((s, _)) if s > score => {}
            Some((s, _)) if s == score => tie = true,
            _ => {
                best = Some((score, i));
                tie = false;
            }
        }
    }
    if tie {
        return None;
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, d).unwrap()
    }

    fn meal(d: u32, t: MealTime, foods: &[&str]) -> Vec<LoggedFood> {
        foods
            .iter()
            .map(|f| LoggedFood {
                key: f.to_string(),
                local_date: day(d),
                meal_time: t,
            })
            .collect()
    }

    const TODAY: u32 = 20;
    use MealTime::*;

    #[test]
    fn meal_times_by_local_hour() {
        assert_eq!(MealTime::from_hour(4), LateSnack);
        assert_eq!(MealTime::from_hour(5), Breakfast);
        assert_eq!(MealTime::from_hour(10), Breakfast);
        assert_eq!(MealTime::from_hour(11), Lunch);
        assert_eq!(MealTime::from_hour(15), Snack);
        assert_eq!(MealTime::from_hour(17), Dinner);
        assert_eq!(MealTime::from_hour(22), LateSnack);
    }

    #[test]
    fn the_same_three_foods_on_three_mornings_are_suggested_as_the_usual_breakfast() {
        let abc = ["banana", "coffee", "oats"];
        let logged: Vec<_> = [18, 19, 20]
            .into_iter()
            .flat_map(|d| meal(d, Breakfast, &abc))
            .collect();
        let s = suggest(&logged, &[], day(TODAY));
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].foods, ["banana", "coffee", "oats"]);
        assert_eq!(s[0].occurrences, 3);
        assert_eq!(s[0].confidence, 1.0);
        assert_eq!(s[0].name, "Usual breakfast");
    }

    #[test]
    fn twice_is_not_a_habit() {
        let logged: Vec<_> = [19, 20]
            .into_iter()
            .flat_map(|d| meal(d, Breakfast, &["oats", "banana"]))
            .collect();
        assert!(suggest(&logged, &[], day(TODAY)).is_empty());
    }

    #[test]
    fn a_single_food_is_not_a_meal() {
        let logged: Vec<_> = [17, 18, 19, 20]
            .into_iter()
            .flat_map(|d| meal(d, Breakfast, &["coffee"]))
            .collect();
        assert!(suggest(&logged, &[], day(TODAY)).is_empty());
    }

    #[test]
    fn foods_eaten_at_different_meal_times_are_not_together() {
        // Oats every breakfast, banana every dinner: never one meal.
        let logged: Vec<_> = [18, 19, 20]
            .into_iter()
            .flat_map(|d| {
                let mut m = meal(d, Breakfast, &["oats"]);
                m.extend(meal(d, Dinner, &["banana"]));
                m
            })
            .collect();
        assert!(suggest(&logged, &[], day(TODAY)).is_empty());
    }

    #[test]
    fn repetitions_older_than_the_window_do_not_count() {
        // Days 1, 2 and 6 are before 20 − 13 = 7: only one repetition counts.
        let logged: Vec<_> = [1, 2, 6, 20]
            .into_iter()
            .flat_map(|d| meal(d, Lunch, &["rice", "beans"]))
            .collect();
        assert!(suggest(&logged, &[], day(TODAY)).is_empty());
        let inside: Vec<_> = [7, 8, 20]
            .into_iter()
            .flat_map(|d| meal(d, Lunch, &["rice", "beans"]))
            .collect();
        assert_eq!(suggest(&inside, &[], day(TODAY)).len(), 1);
    }

    #[test]
    fn a_saved_combination_is_not_suggested_again() {
        let logged: Vec<_> = [18, 19, 20]
            .into_iter()
            .flat_map(|d| meal(d, Breakfast, &["oats", "banana"]))
            .collect();
        let saved = vec![BTreeSet::from(["banana".to_string(), "oats".to_string()])];
        assert!(suggest(&logged, &saved, day(TODAY)).is_empty());
        // A saved meal with other foods hides nothing.
        let other = vec![BTreeSet::from(["banana".to_string()])];
        assert_eq!(suggest(&logged, &other, day(TODAY)).len(), 1);
    }

    #[test]
    fn the_parts_of_a_recurring_meal_are_not_suggested_on_their_own() {
        let logged: Vec<_> = [18, 19, 20]
            .into_iter()
            .flat_map(|d| meal(d, Breakfast, &["oats", "banana", "coffee"]))
            .collect();
        let s = suggest(&logged, &[], day(TODAY));
        assert_eq!(s.len(), 1, "pairs of the meal were offered too: {s:?}");
    }

    #[test]
    fn the_usual_meal_with_an_extra_one_day_is_still_the_usual_meal() {
        let mut logged: Vec<_> = [18, 19]
            .into_iter()
            .flat_map(|d| meal(d, Breakfast, &["oats", "banana"]))
            .collect();
        logged.extend(meal(20, Breakfast, &["oats", "banana", "orange juice"]));
        let s = suggest(&logged, &[], day(TODAY));
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].foods, ["banana", "oats"]);
    }

    #[test]
    fn confidence_is_lower_when_the_foods_are_often_eaten_apart() {
        let mut logged: Vec<_> = [15, 16, 17]
            .into_iter()
            .flat_map(|d| meal(d, Breakfast, &["oats", "banana"]))
            .collect();
        for d in [18, 19, 20] {
            logged.extend(meal(d, Breakfast, &["oats"]));
        }
        let s = suggest(&logged, &[], day(TODAY));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].confidence, 0.5);
    }

    #[test]
    fn future_days_do_not_count() {
        let logged: Vec<_> = [20, 21, 22]
            .into_iter()
            .flat_map(|d| meal(d, Lunch, &["rice", "beans"]))
            .collect();
        assert!(suggest(&logged, &[], day(TODAY)).is_empty());
    }

    #[test]
    fn the_second_suggestion_of_a_meal_time_is_named_by_its_foods() {
        let mut logged: Vec<_> = [14, 15, 16]
            .into_iter()
            .flat_map(|d| meal(d, Dinner, &["rice", "beans"]))
            .collect();
        logged.extend(
            [17, 18, 19]
                .into_iter()
                .flat_map(|d| meal(d, Dinner, &["pasta", "salad"])),
        );
        let s = suggest(&logged, &[], day(TODAY));
        assert_eq!(s.len(), 2);
        let names: BTreeSet<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains("Usual dinner"), "{names:?}");
        assert!(
            names.contains("Dinner: beans, rice") || names.contains("Dinner: pasta, salad"),
            "{names:?}"
        );
    }

    #[test]
    fn suggestion_ids_are_stable_and_differ_by_foods() {
        let a = suggestion_id(&["banana".into(), "oats".into()]);
        assert_eq!(a, suggestion_id(&["banana".into(), "oats".into()]));
        assert_ne!(a, suggestion_id(&["bananaoats".into()]));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn food_keys_use_the_table_name_else_the_description() {
        assert_eq!(food_key(Some("banana"), "2 Bananas"), "banana");
        assert_eq!(food_key(None, "  Mom's   Stew "), "mom's stew");
    }

    #[test]
    fn a_sentence_names_a_saved_meal_by_name_or_keyword() {
        let none: Vec<String> = vec![];
        let kw = vec!["oats".to_string(), "porridge bowl".to_string()];
        let meals = [
            ("Usual breakfast", kw.as_slice()),
            ("Friday pizza", none.as_slice()),
        ];
        assert_eq!(recognise("I had my usual breakfast", meals), Some(0));
        assert_eq!(recognise("usual breakfast", meals), Some(0));
        assert_eq!(recognise("ate a porridge bowl", meals), Some(0));
        assert_eq!(recognise("friday pizza again!", meals), Some(1));
        assert_eq!(recognise("I had breakfast", meals), None);
        assert_eq!(recognise("I had a pizza", meals), None);
        assert_eq!(recognise("", meals), None);
    }

    #[test]
    fn the_longer_name_wins_and_a_tie_names_nothing() {
        let none: Vec<String> = vec![];
        let meals = [
            ("breakfast", none.as_slice()),
            ("big breakfast", none.as_slice()),
        ];
        assert_eq!(recognise("my big breakfast", meals), Some(1));
        let kw = vec!["oats".to_string()];
        let tied = [("a", kw.as_slice()), ("b", kw.as_slice())];
        assert_eq!(recognise("oats", tied), None);
    }
}
