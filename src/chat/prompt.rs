//! The system prompt: who the coach is, how it speaks, what it knows.

use actors::db::ops::conversation::ChatContext;
use domain::profile::{canonical_brevity, canonical_tone};
use serde_json::Value;

/// The tone and length the user asked for, as our values (the original
/// service's `formal`, `brief`, `detailed` read as `professional`, `short`, `long`).
pub fn style(ctx: &ChatContext) -> (String, String) {
    let pref = |key: &str, default: &str| {
        ctx.preferences
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    (
        canonical_tone(&pref("tone", domain::profile::DEFAULT_TONE)).to_owned(),
        canonical_brevity(&pref("brevity", domain::profile::DEFAULT_BREVITY)).to_owned(),
    )
}

/// What the prompt takes from the profile and from memories, in characters
/// (≈ 4 per token: about 500 tokens each), so no stored data can make every
/// chat's prompt huge.
const PROMPT_PROFILE_CHARS: usize = 2_000;
const PROMPT_MEMORY_CHARS: usize = 2_000;

/// The first `max` characters of `text`, marked when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

pub fn system_prompt(ctx: &ChatContext, goals: domain::coach::Goals) -> String {
    let (tone, brevity) = style(ctx);
    let mut p = format!(
        "You are a supportive health coach. Tone: {tone}. Length: {brevity}. \
         Use the tools to log food or a saved meal, read the food summary, create reminders and read XP, \
         and `remember` lasting facts the user states about themselves (allergies, diet, \
         likes, goals, name), in the second person.\n\
         User profile: {}\n\
         Daily goals: {:.0} kcal, {:.0} g protein.\n\
         Today so far: {} food entries, {:.0} kcal, {:.0} g protein, {:.0} g carbs, {:.0} g fat. \
         Food-logging streak: {} days. Active reminders: {}.\n\
         What you know about the user (\"you\" is the user):\n",
        clip(&ctx.profile.to_string(), PROMPT_PROFILE_CHARS),
        goals.calories,
        goals.protein_g,
        ctx.food_entries_today,
        ctx.calories_today,
        ctx.protein_today,
        ctx.carbs_today,
        ctx.fat_today,
        ctx.food_streak,
        ctx.reminders_active
    );
    // Nearest first: what the budget leaves out is the least relevant.
    let mut left = PROMPT_MEMORY_CHARS;
    for m in &ctx.memories {
        let memory = domain::memory::second_person(&m.content);
        let line = format!("- memory: {}\n", clip(&memory, left));
        let n = line.chars().count();
        if n > left + 32 {
            break;
        }
        left = left.saturating_sub(n);
        p.push_str(&line);
        if left == 0 {
            break;
        }
    }
    p
}

#[cfg(test)]
mod prompt_budget {
    use super::*;
    use actors::db::ops::conversation::MemoryHit;
    use domain::coach::Goals;

    #[test]
    fn a_huge_profile_and_many_memories_stay_within_the_budget() {
        let profile: serde_json::Map<String, Value> = (0..3000)
            .map(|i| (format!("f{i}"), Value::from("x".repeat(500))))
            .collect();
        let ctx = ChatContext {
            profile: Value::Object(profile),
            memories: (0..100)
                .map(|i| MemoryHit {
                    content: format!("likes food number {i} {}", "y".repeat(300)),
                    distance: 0.1,
                })
                .collect(),
            ..Default::default()
        };
        let p = system_prompt(&ctx, Goals::default());
        let n = p.chars().count();
        assert!(n < 5_000, "prompt of {n} chars");
        assert!(
            p.contains("likes food number 0"),
            "the nearest memory stays"
        );
        assert!(!p.contains("likes food number 99"));
    }

    #[test]
    fn clipping_marks_the_cut_and_keeps_short_text() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé…");
    }
}
