//! The offline coach: a deterministic answer built from the user's own data,
//! used when no language model is configured (so the service works out of
//! the box) and said to come from offline mode.

use std::fmt::Write;

/// What the coach knows when it answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoachContext {
    pub name: Option<String>,
    pub memories: Vec<String>,
    pub food_entries_today: u32,
    pub calories_today: f64,
    pub protein_today: f64,
    pub food_streak: u32,
    pub reminders_active: u32,
    pub level: u32,
    pub xp: i64,
    /// A saved meal this message logged (its name), with its calories.
    pub logged_meal: Option<(String, f64)>,
}

/// Which saved meal (name, keywords) the user says they ate ("I had my
/// usual breakfast"): a word of eating and the meal's name or a keyword.
pub fn eaten_meal<'a>(
    message: &str,
    meals: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> Option<usize> {
    const EATING: &[&str] = &[
        "had", "ate", "eaten", "eat", "eating", "having", "log", "logged", "finished",
    ];
    let said = message.to_lowercase();
    let eating = said
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| EATING.contains(&w));
    if !eating {
        return None;
    }
    crate::meals::recognise(message, meals)
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// Answers `message` from `ctx`. Memories that share a word with the
/// question (or any, for "what do you know about me") come first.
pub fn reply(ctx: &CoachContext, message: &str) -> String {
    let asked = words(message);
    let about_me = asked.iter().any(|w| {
        matches!(
            w.as_str(),
            "favorite"
                | "favourite"
                | "like"
                | "love"
                | "know"
                | "remember"
                | "allergic"
                | "food"
                | "eat"
        )
    });
    let mut out = String::from("(offline mode) ");
    if let Some((meal, kcal)) = &ctx.logged_meal {
        let _ = write!(out, "Logged your {meal} (about {kcal:.0} kcal). ");
    }
    let relevant: Vec<&String> = ctx
        .memories
        .iter()
        .filter(|m| about_me || words(m).iter().any(|w| asked.contains(w)))
        .collect();
    if !relevant.is_empty() {
        let facts: Vec<String> = relevant.iter().map(|m| format!("you {m}")).collect();
        let _ = write!(out, "From what you've told me, {}. ", facts.join("; "));
    }
    if ctx.food_entries_today > 0 {
        let _ = write!(
            out,
            "Today you've logged {} food entr{} for about {:.0} kcal and {:.0} g of protein. ",
            ctx.food_entries_today,
            if ctx.food_entries_today == 1 {
                "y"
            } else {
                "ies"
            },
            ctx.calories_today,
            ctx.protein_today
        );
    } else {
        out.push_str("You haven't logged any food today yet. ");
    }
    if ctx.food_streak > 1 {
        let _ = write!(
            out,
            "Your food-logging streak is {} days. ",
            ctx.food_streak
        );
    }
    if ctx.reminders_active > 0 {
        let _ = write!(
            out,
            "You have {} active reminder(s). ",
            ctx.reminders_active
        );
    }
    let _ = write!(out, "You're level {} with {} XP.", ctx.level.max(1), ctx.xp);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_about_favourite_food_mentions_the_remembered_love() {
        let ctx = CoachContext {
            memories: vec!["loves pizza".into()],
            ..Default::default()
        };
        let r = reply(&ctx, "What's my favorite food?");
        assert!(r.starts_with("(offline mode)"));
        assert!(r.contains("pizza"), "{r}");
    }

    #[test]
    fn todays_totals_and_streak_are_reported() {
        let ctx = CoachContext {
            food_entries_today: 2,
            calories_today: 640.4,
            protein_today: 31.0,
            food_streak: 3,
            ..Default::default()
        };
        let r = reply(&ctx, "how am I doing?");
        assert!(
            r.contains("2 food entries") && r.contains("640 kcal") && r.contains("3 days"),
            "{r}"
        );
    }

    #[test]
    fn a_saved_meal_is_recognised_when_the_user_says_they_ate_it() {
        let kw = vec!["oats".to_string()];
        let meals = [("Usual breakfast", kw.as_slice())];
        assert_eq!(eaten_meal("I had my usual breakfast", meals), Some(0));
        assert_eq!(eaten_meal("just ate my oats", meals), Some(0));
        assert_eq!(eaten_meal("what is in my usual breakfast?", meals), None);
        assert_eq!(eaten_meal("I had toast", meals), None);
        let r = reply(
            &CoachContext {
                logged_meal: Some(("Usual breakfast".into(), 412.4)),
                ..Default::default()
            },
            "I had my usual breakfast",
        );
        assert!(
            r.contains("Logged your Usual breakfast (about 412 kcal)"),
            "{r}"
        );
    }

    #[test]
    fn unrelated_memories_stay_out_of_an_unrelated_answer() {
        let ctx = CoachContext {
            memories: vec!["is allergic to peanuts".into()],
            ..Default::default()
        };
        assert!(!reply(&ctx, "how many steps today?").contains("peanuts"));
    }
}
