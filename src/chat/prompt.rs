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

pub fn system_prompt(ctx: &ChatContext, goals: domain::coach::Goals) -> String {
    let (tone, brevity) = style(ctx);
    let mut p = format!(
        "You are a supportive health coach. Tone: {tone}. Length: {brevity}. \
         Use the tools to log food, read the food summary, create reminders and read XP, \
         and `remember` lasting facts the user states about themselves (allergies, diet, \
         likes, goals, name), in the second person.\n\
         User profile: {}\n\
         Daily goals: {:.0} kcal, {:.0} g protein.\n\
         Today so far: {} food entries, {:.0} kcal, {:.0} g protein, {:.0} g carbs, {:.0} g fat. \
         Food-logging streak: {} days. Active reminders: {}.\n\
         What you know about the user (\"you\" is the user):\n",
        ctx.profile,
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
    for m in &ctx.memories {
        p.push_str(&format!(
            "- memory: {}\n",
            domain::memory::second_person(&m.content)
        ));
    }
    p
}
