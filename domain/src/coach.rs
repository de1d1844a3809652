//! The offline coach: deterministic, honest about being offline, and
//! acting through the same tools a model would.
//!
//! [`plan`] reads what the user asked ([`Intent`]) and the tool calls that
//! serve it (log food from a sentence, log a saved meal the user says they
//! ate, read a day of food, create a reminder, read XP); the chat runs those calls through its tools, then
//! [`reply`] words the answer from their results, in the user's tone and
//! length. Sentences that ask nothing of a tool must plan no call.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::memory;
use crate::nutrition;
use crate::profile::{canonical_brevity, canonical_tone};

/// What the coach knows when it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct CoachContext {
    /// The profile's name.
    pub name: Option<String>,
    /// The user's nearest long-term memories (any person: stored as given).
    pub memories: Vec<String>,
    /// The user's own earlier messages (the client's `message_history` or
    /// the stored window): facts said there count too ("My name is Alice").
    pub history: Vec<String>,
    pub food_entries_today: u32,
    pub calories_today: f64,
    pub protein_today: f64,
    pub food_streak: u32,
    pub reminders_active: u32,
    pub level: u32,
    pub xp: i64,
    pub goals: Goals,
    pub tone: String,
    pub brevity: String,
    pub now: DateTime<Utc>,
    pub timezone: Tz,
    /// The user's saved meals: "I had my usual breakfast" logs one.
    pub saved_meals: Vec<SavedMeal>,
}

/// A saved meal as the coach recognises it in a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMeal {
    pub id: String,
    pub name: String,
    pub keywords: Vec<String>,
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

impl Default for CoachContext {
    fn default() -> Self {
        Self {
            name: None,
            memories: Vec::new(),
            history: Vec::new(),
            food_entries_today: 0,
            calories_today: 0.0,
            protein_today: 0.0,
            food_streak: 0,
            reminders_active: 0,
            level: 1,
            xp: 0,
            goals: Goals::default(),
            tone: "friendly".into(),
            brevity: "medium".into(),
            now: Utc::now(),
            timezone: chrono_tz::UTC,
            saved_meals: Vec::new(),
        }
    }
}

/// Daily targets: from the profile when it says, else estimated from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goals {
    pub calories: f64,
    pub protein_g: f64,
}

impl Default for Goals {
    fn default() -> Self {
        Self {
            calories: 2000.0,
            protein_g: 60.0,
        }
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite() && *x > 0.0)
}

impl Goals {
    /// `daily_calorie_goal` / `calorie_goal` and `protein_goal_g` when set;
    /// else Mifflin-St Jeor × 1.4 (light activity) from weight, height, age
    /// and sex, and 1.2 g of protein per kg; else 2000 kcal and 60 g.
    pub fn from_profile(profile: &Value) -> Self {
        let mut g = Goals::default();
        let weight = num(profile.get("weight_kg"));
        if let (Some(w), Some(h), Some(a)) = (
            weight,
            num(profile.get("height_cm")),
            num(profile.get("age")),
        ) {
            let sex = match profile.get("sex").and_then(Value::as_str) {
                Some("male") => 5.0,
                Some("female") => -161.0,
                _ => -78.0,
            };
            let bmr = 10.0 * w + 6.25 * h - 5.0 * a + sex;
            g.calories = (bmr * 1.4 / 50.0).round() * 50.0;
        }
        if let Some(w) = weight {
            g.protein_g = (w * 1.2).round();
        }
        if let Some(c) = num(profile.get("daily_calorie_goal")).or(num(profile.get("calorie_goal")))
        {
            g.calories = c;
        }
        if let Some(p) = num(profile.get("protein_goal_g")) {
            g.protein_g = p;
        }
        g
    }
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// Foods eaten (recognised by the nutrition table) and parts not recognised.
    LogFood {
        items: Vec<String>,
        unknown: Vec<String>,
        yesterday: bool,
    },
    /// A saved meal eaten (its id and name), with any other foods the
    /// sentence names (parts naming the meal are the meal, not food).
    LogMeal {
        id: String,
        name: String,
        items: Vec<String>,
        unknown: Vec<String>,
        yesterday: bool,
    },
    Today,
    Week,
    Suggest {
        meal: &'static str,
    },
    Reminder(Option<ReminderPlan>),
    Recall(Topic),
    Progress,
    /// A statement of a fact to remember ("I love pizza").
    Fact(Vec<String>),
    Greeting,
    Thanks,
    OffTopic,
}

/// What a recall question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Name,
    Allergies,
    Likes,
    Goals,
    Diet,
    Everything,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderPlan {
    pub message: String,
    /// `HH:MM` daily, else one time.
    pub daily_time: Option<String>,
    pub trigger_time: Option<DateTime<Utc>>,
}

/// A tool call the offline coach makes.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCall {
    pub name: &'static str,
    pub arguments: Value,
}

fn norm(message: &str) -> String {
    message
        .to_lowercase()
        .replace(['’', '‘'], "'")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `phrase` occurs in `s` starting at a word boundary.
fn has(s: &str, phrase: &str) -> bool {
    find_word(s, phrase).is_some()
}

fn find_word(s: &str, phrase: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = s[from..].find(phrase) {
        let at = from + pos;
        let before_ok = at == 0 || !s.as_bytes()[at - 1].is_ascii_alphanumeric();
        let end = at + phrase.len();
        let after_ok =
            phrase.ends_with(' ') || end >= s.len() || !s.as_bytes()[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + phrase.len().max(1);
    }
    None
}

fn any(s: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| has(s, p))
}

fn is_question(s: &str) -> bool {
    s.trim_end().ends_with('?')
        || [
            "what", "which", "who", "how", "why", "when", "where", "should", "can", "could", "do ",
            "does", "did", "is ", "are ", "am i", "will",
        ]
        .iter()
        .any(|q| s.starts_with(q))
}

const FOOD_TRIGGERS: &[&str] = &[
    "i just had ",
    "i just ate ",
    "i just drank ",
    "i had ",
    "i ate ",
    "i drank ",
    "i've had ",
    "i have had ",
    "i've eaten ",
    "i have eaten ",
    "i'm eating ",
    "i am eating ",
    "i'm having ",
    "i am having ",
    "please log ",
    "log ",
    "just had ",
    "just ate ",
];

const FOOD_TAILS: &[&str] = &[
    " for breakfast",
    " for lunch",
    " for dinner",
    " for supper",
    " as a snack",
    " for a snack",
    " this morning",
    " this afternoon",
    " this evening",
    " tonight",
    " today",
    " yesterday",
    " just now",
    " earlier",
    " already",
];

fn food_items(s: &str) -> Option<(Vec<String>, Vec<String>)> {
    food_parts(s).filter(|(items, _)| !items.is_empty())
}

/// The parts of a sentence of eating: those the nutrition table knows, and
/// short ones it does not.
fn food_parts(s: &str) -> Option<(Vec<String>, Vec<String>)> {
    let at = FOOD_TRIGGERS
        .iter()
        .filter_map(|t| find_word(s, t).map(|i| (i, t.len())))
        .min_by_key(|(i, _)| *i)?;
    let rest = &s[at.0 + at.1..];
    let end = rest.find(['.', '!', '?', ';']).unwrap_or(rest.len());
    let mut text = rest[..end].trim().to_owned();
    // "for breakfast I had ..." leaves nothing to cut; "... for breakfast" does.
    for tail in FOOD_TAILS {
        while let Some(i) = text.find(tail) {
            text.replace_range(i..i + tail.len(), "");
        }
    }
    let mut items = Vec::new();
    let mut unknown = Vec::new();
    let parts = text
        .replace(" & ", ",")
        .replace(" plus ", ",")
        .replace(" with ", ",")
        .replace(" and ", ",");
    for part in parts.split(',') {
        let part = part.trim().trim_start_matches("and ").trim();
        if part.is_empty() {
            continue;
        }
        if nutrition::estimate(part, None).is_some() {
            items.push(part.to_owned());
        } else if part.split_whitespace().count() <= 4 {
            unknown.push(part.to_owned());
        }
    }
    Some((items, unknown))
}

/// The saved meal the message says was eaten, and the sentence's other
/// foods (a part naming the meal or a keyword of it is the meal).
fn meal_eaten(ctx: &CoachContext, message: &str, s: &str) -> Option<Intent> {
    let meals = || {
        ctx.saved_meals
            .iter()
            .map(|m| (m.name.as_str(), m.keywords.as_slice()))
    };
    let meal = &ctx.saved_meals[eaten_meal(message, meals())?];
    let names_it = |part: &String| {
        crate::meals::recognise(part, [(meal.name.as_str(), meal.keywords.as_slice())]).is_some()
    };
    let (mut items, mut unknown) = food_parts(s).unwrap_or_default();
    items.retain(|p| !names_it(p));
    unknown.retain(|p| !names_it(p));
    Some(Intent::LogMeal {
        id: meal.id.clone(),
        name: meal.name.clone(),
        items,
        unknown,
        yesterday: has(s, "yesterday"),
    })
}

/// `10:00`, `10`, `10am`, `7:30 pm`, `noon` after " at ".
fn parse_time(s: &str) -> Option<NaiveTime> {
    if has(s, "noon") || has(s, "midday") {
        return NaiveTime::from_hms_opt(12, 0, 0);
    }
    let mut from = 0;
    while let Some(pos) = s[from..].find("at ") {
        let at = from + pos;
        from = at + 3;
        if at > 0 && s.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = &s[at + 3..];
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ':' || *c == '.')
            .collect();
        if token.is_empty() {
            continue;
        }
        let after = rest[token.len()..].trim_start();
        let pm = after.starts_with("pm") || after.starts_with("p.m");
        let am = after.starts_with("am") || after.starts_with("a.m");
        let (h, m) = match token.split_once([':', '.']) {
            Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
            None => (token.parse::<u32>().ok()?, 0),
        };
        let h = match (h, pm, am) {
            (12, false, true) => 0,
            (h, true, _) if h < 12 => h + 12,
            (h, _, _) => h,
        };
        return NaiveTime::from_hms_opt(h, m, 0);
    }
    None
}

fn reminder_plan(s: &str, now: DateTime<Utc>, tz: Tz) -> Option<ReminderPlan> {
    let after = &s[find_word(s, "remind me")? + "remind me".len()..];
    let daily = any(
        s,
        &[
            "every day",
            "everyday",
            "daily",
            "each day",
            "every morning",
            "every evening",
            "every night",
            "every afternoon",
        ],
    );
    let time = parse_time(s).or_else(|| {
        let default = if has(s, "every morning") {
            (8, 0)
        } else if has(s, "every evening") {
            (19, 0)
        } else if has(s, "every night") {
            (21, 0)
        } else {
            return None;
        };
        NaiveTime::from_hms_opt(default.0, default.1, 0)
    })?;
    let what = match find_word(after, "to ") {
        Some(i) => &after[i + 3..],
        None => after
            .trim_start_matches(" about ")
            .trim_start_matches(" of "),
    };
    let cut = [
        " every ",
        " everyday",
        " at ",
        " daily",
        " each ",
        " tomorrow",
        " today",
        " tonight",
        " in the ",
        ".",
        "!",
        "?",
    ]
    .iter()
    .filter_map(|c| what.find(c))
    .min()
    .unwrap_or(what.len());
    let what = what[..cut].trim();
    if what.is_empty() {
        return None;
    }
    let mut message: Vec<char> = what.chars().collect();
    message[0] = message[0].to_ascii_uppercase();
    let message: String = message.into_iter().collect();
    if daily {
        return Some(ReminderPlan {
            message,
            daily_time: Some(time.format("%H:%M").to_string()),
            trigger_time: None,
        });
    }
    let today = now.with_timezone(&tz).date_naive();
    let mut day = if has(s, "tomorrow") {
        today + Duration::days(1)
    } else {
        today
    };
    let at = |d: NaiveDate| tz.from_local_datetime(&d.and_time(time)).earliest();
    let mut when = at(day)?;
    if when.with_timezone(&Utc) <= now {
        day += Duration::days(1);
        when = at(day)?;
    }
    Some(ReminderPlan {
        message,
        daily_time: None,
        trigger_time: Some(when.with_timezone(&Utc)),
    })
}

fn meal_for(s: &str, now: DateTime<Utc>, tz: Tz) -> &'static str {
    for meal in ["breakfast", "lunch", "dinner", "snack"] {
        if has(s, meal) {
            return meal;
        }
    }
    if has(s, "supper") {
        return "dinner";
    }
    let local = now.with_timezone(&tz);
    match local.hour() * 60 + local.minute() {
        0..=629 => "breakfast",
        630..=899 => "lunch",
        900..=1019 => "snack",
        _ => "dinner",
    }
}

/// Reads the message: what is asked, and the tool calls that serve it.
pub fn plan(ctx: &CoachContext, message: &str) -> (Intent, Vec<PlannedCall>) {
    let s = norm(message);
    let question = is_question(&s);
    let intent = if has(&s, "remind me") {
        Intent::Reminder(reminder_plan(&s, ctx.now, ctx.timezone))
    } else if let Some(meal) = (!question).then(|| meal_eaten(ctx, message, &s)).flatten() {
        meal
    } else if let Some((items, unknown)) = (!question).then(|| food_items(&s)).flatten() {
        Intent::LogFood {
            items,
            unknown,
            yesterday: has(&s, "yesterday"),
        }
    } else if any(
        &s,
        &[
            "what should i eat",
            "what can i eat",
            "what should i have",
            "what to eat",
            "what do i eat",
            "what should i cook",
            "suggest",
            "recommend",
            "idea for",
            "ideas for",
            "i'm hungry",
            "im hungry",
            "i am hungry",
            "what's for dinner",
            "what's for lunch",
            "what's for breakfast",
            "eat next",
        ],
    ) {
        Intent::Suggest {
            meal: meal_for(&s, ctx.now, ctx.timezone),
        }
    } else if any(
        &s,
        &[
            "this week",
            "past week",
            "last 7 days",
            "last seven days",
            "weekly",
        ],
    ) && any(
        &s,
        &[
            "eat", "ate", "eaten", "intake", "calorie", "calories", "protein", "food", "doing",
            "summary", "total", "totals",
        ],
    ) {
        Intent::Week
    } else if any(
        &s,
        &[
            "how am i doing",
            "how many calories",
            "calories today",
            "calories left",
            "what have i eaten",
            "what did i eat today",
            "what i ate today",
            "eaten today",
            "today's intake",
            "intake today",
            "my intake",
            "protein today",
            "so far today",
            "daily summary",
            "food summary",
            "summary",
            "left today",
        ],
    ) {
        Intent::Today
    } else if let Some(topic) = recall_topic(&s) {
        Intent::Recall(topic)
    } else if any(
        &s,
        &[
            "xp",
            "level",
            "streak",
            "streaks",
            "points",
            "my progress",
            "achievements",
            "tier",
        ],
    ) {
        Intent::Progress
    } else if !question && !memory::extract(message).is_empty() {
        Intent::Fact(
            memory::extract(message)
                .into_iter()
                .map(|f| f.text)
                .collect(),
        )
    } else if any(&s, &["thanks", "thank you", "thx", "cheers"]) {
        Intent::Thanks
    } else if s.split_whitespace().count() <= 4
        && any(
            &s,
            &[
                "hi",
                "hello",
                "hey",
                "good morning",
                "good evening",
                "good afternoon",
                "yo",
            ],
        )
    {
        Intent::Greeting
    } else {
        Intent::OffTopic
    };
    let calls = calls_for(&intent, ctx);
    (intent, calls)
}

fn recall_topic(s: &str) -> Option<Topic> {
    if any(
        s,
        &[
            "what's my name",
            "what is my name",
            "who am i",
            "my name?",
            "know my name",
            "remember my name",
        ],
    ) {
        return Some(Topic::Name);
    }
    if !(is_question(s) || any(s, &["tell me what you", "remind me what"])) {
        return None;
    }
    if any(s, &["allergic", "allergy", "allergies"]) {
        Some(Topic::Allergies)
    } else if any(
        s,
        &[
            "favorite",
            "favourite",
            "do i like",
            "do i love",
            "do i hate",
        ],
    ) {
        Some(Topic::Likes)
    } else if any(s, &["my goal", "my goals", "goal weight", "target weight"]) {
        Some(Topic::Goals)
    } else if any(s, &["my diet", "vegetarian", "vegan"]) {
        Some(Topic::Diet)
    } else if any(
        s,
        &[
            "know about me",
            "remember about me",
            "you remember",
            "what do you know",
            "about me",
        ],
    ) {
        Some(Topic::Everything)
    } else {
        None
    }
}

fn calls_for(intent: &Intent, ctx: &CoachContext) -> Vec<PlannedCall> {
    let when = |yesterday: bool, mut args: Value| {
        if yesterday {
            args["timestamp"] = json!((ctx.now - Duration::days(1)).to_rfc3339());
        }
        args
    };
    let log_food = |items: &[String], yesterday: bool| {
        items
            .iter()
            .map(|d| PlannedCall {
                name: "log_food",
                arguments: when(yesterday, json!({"description": d})),
            })
            .collect::<Vec<_>>()
    };
    match intent {
        Intent::LogFood {
            items, yesterday, ..
        } => log_food(items, *yesterday),
        Intent::LogMeal {
            id,
            items,
            yesterday,
            ..
        } => std::iter::once(PlannedCall {
            name: "log_meal",
            arguments: when(*yesterday, json!({"name": id})),
        })
        .chain(log_food(items, *yesterday))
        .collect(),
        Intent::Today => vec![PlannedCall {
            name: "get_food_summary",
            arguments: json!({}),
        }],
        Intent::Week => {
            let today = ctx.now.with_timezone(&ctx.timezone).date_naive();
            (0..7)
                .rev()
                .map(|i| PlannedCall {
                    name: "get_food_summary",
                    arguments: json!({"date": (today - Duration::days(i)).to_string()}),
                })
                .collect()
        }
        Intent::Reminder(Some(r)) => {
            let args = match (&r.daily_time, r.trigger_time) {
                (Some(t), _) => json!({"type": "daily", "message": r.message, "daily_time": t,
                                       "timezone": ctx.timezone.name()}),
                (None, Some(at)) => json!({"type": "one_time", "message": r.message,
                                           "trigger_time": at.to_rfc3339(),
                                           "timezone": ctx.timezone.name()}),
                (None, None) => return Vec::new(),
            };
            vec![PlannedCall {
                name: "create_reminder",
                arguments: args,
            }]
        }
        Intent::Progress => vec![PlannedCall {
            name: "get_xp",
            arguments: json!({}),
        }],
        _ => Vec::new(),
    }
}

/// The voice of a tone: an acknowledgement and a sign-off.
fn voice(tone: &str) -> (&'static str, &'static str) {
    match canonical_tone(tone) {
        "professional" => ("Noted.", ""),
        "motivational" => ("Great work!", "Keep it up, every entry counts!"),
        "empathetic" => (
            "Thanks for sharing that.",
            "Be kind to yourself along the way.",
        ),
        "direct" => ("", ""),
        "casual" => ("Cool,", ""),
        _ => ("Nice!", ""),
    }
}

/// Sentences: the core always; the details at `long`; `short` keeps the first.
struct Answer {
    core: Vec<String>,
    details: Vec<String>,
}

impl Answer {
    fn new() -> Self {
        Self {
            core: Vec::new(),
            details: Vec::new(),
        }
    }

    fn render(self, ctx: &CoachContext, acknowledge: bool) -> String {
        let (ack, closer) = voice(&ctx.tone);
        let mut parts: Vec<String> = Vec::new();
        if acknowledge && !ack.is_empty() {
            parts.push(ack.to_owned());
        }
        match canonical_brevity(&ctx.brevity) {
            "short" => parts.extend(self.core.into_iter().take(1)),
            "long" => {
                parts.extend(self.core);
                parts.extend(self.details);
                if !closer.is_empty() {
                    parts.push(closer.to_owned());
                }
            }
            _ => {
                parts.extend(self.core);
                if !closer.is_empty() {
                    parts.push(closer.to_owned());
                }
            }
        }
        let mut text = parts.join(" ");
        // The casual acknowledgement runs into the sentence: "Cool, logged ...".
        if let Some(rest) = text.strip_prefix("Cool, ") {
            let mut c = rest.chars();
            text = match c.next() {
                Some(f) => format!("Cool, {}{}", f.to_lowercase(), c.as_str()),
                None => text,
            };
        }
        format!("(offline mode) {text}")
    }
}

fn kcal(x: f64) -> String {
    format!("{:.0} kcal", x)
}

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Every fact the coach may recall: memories and the user's history turns.
fn known_facts(ctx: &CoachContext) -> Vec<String> {
    let mut facts: Vec<String> = ctx
        .memories
        .iter()
        .map(|m| memory::second_person(m))
        .collect();
    for h in &ctx.history {
        for f in memory::extract(h) {
            // A later statement in the same slot wins (the history is oldest first).
            if let Some(slot) = f.slot {
                let prefix = slot_prefix(slot);
                facts.retain(|x| !x.starts_with(prefix));
            }
            facts.push(f.text);
        }
    }
    let mut seen = std::collections::HashSet::new();
    facts.retain(|f| seen.insert(f.to_lowercase()));
    facts
}

fn slot_prefix(slot: &str) -> &'static str {
    match slot {
        "name" => "your name is",
        "weight_goal" => "your goal weight is",
        _ => "you are ",
    }
}

fn name_of(ctx: &CoachContext) -> Option<String> {
    let from_facts = known_facts(ctx).iter().rev().find_map(|f| {
        f.strip_prefix("your name is ")
            .map(|n| n.trim().trim_end_matches('.').to_owned())
    });
    from_facts.or_else(|| ctx.name.clone())
}

/// Words a fact mentions that a meal must not contain ("peanuts" → "peanut").
fn avoided_words(ctx: &CoachContext) -> Vec<String> {
    let mut out = Vec::new();
    for f in known_facts(ctx) {
        let l = f.to_lowercase();
        for lead in [
            "allergic to ",
            "don't eat ",
            "can't eat ",
            "hate ",
            "dislike ",
            "don't like ",
        ] {
            if let Some(i) = l.find(lead) {
                for w in l[i + lead.len()..].split(|c: char| !c.is_alphanumeric()) {
                    if w.len() > 2 && !["and", "the", "any", "all"].contains(&w) {
                        out.push(w.trim_end_matches('s').to_owned());
                    }
                }
            }
        }
    }
    out
}

fn diet_of(ctx: &CoachContext) -> Option<&'static str> {
    let facts = known_facts(ctx);
    let last = facts.iter().rev().find(|f| {
        f.contains("vegan")
            || f.contains("vegetarian")
            || f.contains("pescatarian")
            || f.contains("eat meat")
    })?;
    if last.contains("vegan") {
        Some("vegan")
    } else if last.contains("vegetarian") {
        Some("vegetarian")
    } else if last.contains("pescatarian") {
        Some("pescatarian")
    } else {
        None
    }
}

/// (meal, description, kcal, protein g, diet: vegan < vegetarian < pescatarian < any)
const MEALS: &[(&str, &str, f64, f64, u8)] = &[
    (
        "breakfast",
        "Greek yogurt with berries and a few walnuts",
        300.0,
        20.0,
        1,
    ),
    (
        "breakfast",
        "oatmeal with a banana and soy milk",
        350.0,
        12.0,
        0,
    ),
    (
        "breakfast",
        "two scrambled eggs on whole wheat toast",
        370.0,
        22.0,
        1,
    ),
    (
        "breakfast",
        "peanut butter on whole wheat toast",
        330.0,
        13.0,
        0,
    ),
    ("breakfast", "smoked salmon on a bagel", 390.0, 24.0, 2),
    (
        "lunch",
        "a lentil soup with a slice of sourdough",
        420.0,
        22.0,
        0,
    ),
    (
        "lunch",
        "a chickpea salad with feta and olive oil",
        480.0,
        19.0,
        1,
    ),
    ("lunch", "a tuna salad sandwich", 450.0, 28.0, 2),
    (
        "lunch",
        "grilled chicken breast with brown rice and vegetables",
        550.0,
        45.0,
        3,
    ),
    (
        "dinner",
        "a tofu stir-fry with vegetables and rice",
        520.0,
        25.0,
        0,
    ),
    (
        "dinner",
        "baked salmon with quinoa and broccoli",
        560.0,
        38.0,
        2,
    ),
    ("dinner", "a bean chili with a baked potato", 540.0, 24.0, 0),
    (
        "dinner",
        "grilled chicken with roasted potatoes and salad",
        600.0,
        45.0,
        3,
    ),
    (
        "dinner",
        "an omelette with spinach and cheese",
        420.0,
        28.0,
        1,
    ),
    ("snack", "an apple with peanut butter", 250.0, 7.0, 0),
    ("snack", "hummus with carrot sticks", 180.0, 6.0, 0),
    ("snack", "a Greek yogurt", 100.0, 17.0, 1),
    ("snack", "a banana", 105.0, 1.0, 0),
    ("snack", "a handful of almonds", 170.0, 6.0, 0),
    (
        "snack",
        "a boiled egg and a few cherry tomatoes",
        100.0,
        7.0,
        1,
    ),
];

/// Words in a meal that clash with an avoided word (nut allergies too).
fn clashes(meal: &str, avoid: &[String]) -> bool {
    let m = meal.to_lowercase();
    avoid.iter().any(|a| {
        m.contains(a.as_str())
            || (a.starts_with("nut") || a == "tree")
                && ["walnut", "almond", "peanut"].iter().any(|n| m.contains(n))
            || (a == "dairy" || a == "lactose")
                && ["yogurt", "cheese", "feta", "milk"]
                    .iter()
                    .any(|n| m.contains(n) && !m.contains("soy milk"))
            || (a == "egg") && m.contains("omelette")
            || (a == "fish" || a == "seafood") && ["salmon", "tuna"].iter().any(|n| m.contains(n))
            || (a == "gluten" || a == "wheat")
                && ["toast", "bagel", "sandwich", "sourdough"]
                    .iter()
                    .any(|n| m.contains(n))
    })
}

fn suggestion(ctx: &CoachContext, meal: &'static str) -> Answer {
    let level = match diet_of(ctx) {
        Some("vegan") => 0,
        Some("vegetarian") => 1,
        Some("pescatarian") => 2,
        _ => 3,
    };
    let avoid = avoided_words(ctx);
    let left = ctx.goals.calories - ctx.calories_today;
    let protein_left = ctx.goals.protein_g - ctx.protein_today;
    let fitting: Vec<_> = MEALS
        .iter()
        .filter(|m| m.0 == meal && m.4 <= level && !clashes(m.1, &avoid))
        .collect();
    // Prefer protein when short of it, then what fits the calories left.
    let pick = fitting
        .iter()
        .filter(|m| m.2 <= left.max(150.0))
        .max_by(|a, b| {
            let score = |m: &&&(&str, &str, f64, f64, u8)| {
                if protein_left > 20.0 {
                    m.3
                } else {
                    -m.2
                }
            };
            score(a).total_cmp(&score(b))
        })
        .or_else(|| fitting.iter().min_by(|a, b| a.2.total_cmp(&b.2)));
    let mut a = Answer::new();
    match pick {
        Some(m) => {
            a.core.push(format!(
                "For {meal}, how about {} (about {}, {:.0} g protein)?",
                m.1,
                kcal(m.2),
                m.3
            ));
            if left > 0.0 {
                a.core.push(format!(
                    "You have about {} left of your {} goal today.",
                    kcal(left),
                    kcal(ctx.goals.calories)
                ));
            } else {
                a.core.push(format!(
                    "You're at your {} goal already, so keep it light.",
                    kcal(ctx.goals.calories)
                ));
            }
            let mut why = Vec::new();
            if let Some(d) = diet_of(ctx) {
                why.push(format!("it's {d}"));
            }
            if !avoid.is_empty() {
                why.push(format!("it avoids {}", list(&avoid)));
            }
            if protein_left > 20.0 {
                why.push(format!("you still need about {protein_left:.0} g of protein"));
            }
            if !why.is_empty() {
                a.details.push(format!("I picked it because {}.", list(&why)));
            }
        }
        None => a.core.push(format!(
            "I don't have a {meal} idea that fits what you've told me; a simple plate of vegetables with a protein you eat is a safe choice."
        )),
    }
    a
}

fn food_totals(v: &Value) -> (f64, f64, usize) {
    (
        v.get("total_calories")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        v.get("total_protein")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        v.get("entries")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
    )
}

/// Words the answer from the tools' results (name, result), in order.
pub fn reply(ctx: &CoachContext, intent: &Intent, results: &[(String, Value)]) -> String {
    let mut a = Answer::new();
    let mut acknowledge = false;
    match intent {
        Intent::LogFood { unknown, .. } | Intent::LogMeal { unknown, .. } => {
            let meal_name = match intent {
                Intent::LogMeal { name, .. } => Some(name.as_str()),
                _ => None,
            };
            let meal = results
                .iter()
                .find(|(n, _)| n == "log_meal")
                .map(|(_, r)| r);
            let logged_meal = meal.filter(|r| r.get("logged_meal").is_some());
            let logged: Vec<&Value> = results
                .iter()
                .filter(|(n, r)| n == "log_food" && r.get("logged").is_some())
                .map(|(_, r)| r)
                .collect();
            let calories = |r: &Value| r.get("calories").and_then(Value::as_f64);
            let mut items: Vec<String> = Vec::new();
            if let Some(r) = logged_meal {
                let name = r["logged_meal"].as_str().or(meal_name).unwrap_or("meal");
                items.push(match calories(r) {
                    Some(c) => format!("your {name} (about {})", kcal(c)),
                    None => format!("your {name}"),
                });
            }
            items.extend(logged.iter().map(|r| {
                let what = r["logged"].as_str().unwrap_or("food").to_owned();
                match calories(r) {
                    Some(c) => format!("{what} (~{})", kcal(c)),
                    None => what,
                }
            }));
            // The meal named but not logged (deleted, or refused): say why.
            let meal_failed = match (meal_name, logged_meal) {
                (Some(name), None) => {
                    let why = meal
                        .and_then(|r| r.get("error"))
                        .and_then(Value::as_str)
                        .unwrap_or("it was not accepted");
                    Some(format!("I couldn't log your {name}: {why}."))
                }
                _ => None,
            };
            if items.is_empty() {
                a.core.push(meal_failed.unwrap_or_else(|| {
                    "I couldn't log that; please try again with the food and amount.".into()
                }));
            } else {
                acknowledge = true;
                let added: f64 = logged_meal
                    .into_iter()
                    .chain(logged.iter().copied())
                    .filter_map(calories)
                    .sum();
                // A saved meal is one food-logging event, like one entry.
                let events = logged.len() as i64 + i64::from(logged_meal.is_some());
                a.core.push(format!(
                    "Logged {}: +{} XP.",
                    list(&items),
                    events * crate::gamification::XpEvent::FoodLogged.xp()
                ));
                a.core.extend(meal_failed);
                let total = ctx.calories_today + added;
                a.core.push(format!(
                    "That's about {} today of your {} goal.",
                    kcal(total),
                    kcal(ctx.goals.calories)
                ));
                if !unknown.is_empty() {
                    a.details.push(format!(
                        "I didn't recognise {}; log it with its calories if you know them.",
                        list(unknown)
                    ));
                }
            }
        }
        Intent::Today => {
            let (cal, protein, n) = results
                .iter()
                .find(|(n, _)| n == "get_food_summary")
                .map(|(_, r)| food_totals(r))
                .unwrap_or((
                    ctx.calories_today,
                    ctx.protein_today,
                    ctx.food_entries_today as usize,
                ));
            if n == 0 {
                a.core.push(format!(
                    "You haven't logged any food today yet; your goal is {}.",
                    kcal(ctx.goals.calories)
                ));
            } else {
                a.core.push(format!(
                    "Today: {} from {n} entr{} of your {} goal ({} left).",
                    kcal(cal),
                    if n == 1 { "y" } else { "ies" },
                    kcal(ctx.goals.calories),
                    kcal((ctx.goals.calories - cal).max(0.0))
                ));
                a.core.push(format!(
                    "Protein: {protein:.0} of {:.0} g.",
                    ctx.goals.protein_g
                ));
            }
            if ctx.food_streak > 1 {
                a.details.push(format!(
                    "Your food-logging streak is {} days.",
                    ctx.food_streak
                ));
            }
        }
        Intent::Week => {
            let days: Vec<(f64, f64, usize)> = results
                .iter()
                .filter(|(n, _)| n == "get_food_summary")
                .map(|(_, r)| food_totals(r))
                .collect();
            let logged: Vec<_> = days.iter().filter(|d| d.2 > 0).collect();
            if logged.is_empty() {
                a.core
                    .push("You haven't logged any food in the last 7 days.".into());
            } else {
                let avg = logged.iter().map(|d| d.0).sum::<f64>() / logged.len() as f64;
                let protein = logged.iter().map(|d| d.1).sum::<f64>() / logged.len() as f64;
                a.core.push(format!(
                    "This week you logged food on {} of 7 days, averaging {} a day against your {} goal.",
                    logged.len(),
                    kcal(avg),
                    kcal(ctx.goals.calories)
                ));
                a.core.push(format!(
                    "Average protein: {protein:.0} of {:.0} g.",
                    ctx.goals.protein_g
                ));
                let total: f64 = days.iter().map(|d| d.0).sum();
                a.details
                    .push(format!("Total for the week: {}.", kcal(total)));
            }
        }
        Intent::Suggest { meal } => a = suggestion(ctx, meal),
        Intent::Reminder(plan) => {
            let created = results
                .iter()
                .find(|(n, r)| n == "create_reminder" && r.get("created").is_some());
            match (plan, created) {
                (Some(p), Some((_, r))) => {
                    acknowledge = true;
                    let when = match &p.daily_time {
                        Some(t) => format!("every day at {t}"),
                        None => {
                            let at = p
                                .trigger_time
                                .map(|t| t.with_timezone(&ctx.timezone).format("%Y-%m-%d %H:%M").to_string())
                                .unwrap_or_default();
                            format!("on {at}")
                        }
                    };
                    let tz = r.get("timezone").and_then(Value::as_str).unwrap_or("UTC");
                    a.core.push(format!("I'll remind you: \"{}\" {when} ({tz}).", p.message));
                }
                (Some(_), None) => {
                    let why = results
                        .iter()
                        .find_map(|(_, r)| r.get("error").and_then(Value::as_str))
                        .unwrap_or("it was not accepted");
                    a.core.push(format!("I couldn't create that reminder: {why}."));
                }
                (None, _) => a.core.push(
                    "When should I remind you? Say for example \"remind me to drink water every day at 10:00\"."
                        .into(),
                ),
            }
        }
        Intent::Recall(topic) => a = recall(ctx, *topic),
        Intent::Progress => {
            let r = results.iter().find(|(n, _)| n == "get_xp").map(|(_, r)| r);
            let xp = r
                .and_then(|r| r.get("xp"))
                .and_then(Value::as_i64)
                .unwrap_or(ctx.xp);
            let level = r
                .and_then(|r| r.get("level"))
                .and_then(Value::as_u64)
                .map_or(ctx.level, |l| l as u32);
            let tier = r.and_then(|r| r.get("tier")).and_then(Value::as_str);
            let next = r
                .and_then(|r| r.get("xp_to_next_level"))
                .and_then(Value::as_i64);
            a.core.push(format!(
                "You're level {}{} with {xp} XP{}.",
                level.max(1),
                tier.map(|t| format!(" ({t})")).unwrap_or_default(),
                next.map(|n| format!(", {n} XP to the next level"))
                    .unwrap_or_default()
            ));
            a.core.push(if ctx.food_streak > 0 {
                format!(
                    "Your food-logging streak is {} day{}.",
                    ctx.food_streak,
                    if ctx.food_streak == 1 { "" } else { "s" }
                )
            } else {
                "Log a meal today to start a food-logging streak.".into()
            });
            if ctx.reminders_active > 0 {
                a.details.push(format!(
                    "You have {} active reminder(s).",
                    ctx.reminders_active
                ));
            }
        }
        Intent::Fact(facts) => {
            acknowledge = true;
            a.core
                .push(format!("Got it, I'll remember that {}.", list(facts)));
        }
        Intent::Greeting => {
            let hello = match name_of(ctx) {
                Some(n) => format!("Hi {n}!"),
                None => "Hi!".into(),
            };
            a.core.push(format!(
                "{hello} Tell me what you ate, ask what to eat next, or ask me to set a reminder."
            ));
        }
        Intent::Thanks => a.core.push("You're welcome!".into()),
        Intent::OffTopic => {
            a.core
                .push("I can't help with that in offline mode.".into());
            a.core.push(
                "I can log food (\"I had 2 eggs and toast\"), show today's or this week's intake, suggest what to eat, set reminders and tell you your XP and streaks."
                    .into(),
            );
        }
    }
    a.render(ctx, acknowledge)
}

fn recall(ctx: &CoachContext, topic: Topic) -> Answer {
    let mut a = Answer::new();
    if topic == Topic::Name {
        a.core.push(match name_of(ctx) {
            Some(n) => format!("Your name is {n}."),
            None => "You haven't told me your name yet.".into(),
        });
        return a;
    }
    let words: &[&str] = match topic {
        Topic::Allergies => &["allergic", "allergy"],
        Topic::Likes => &["love", "like", "favorite", "favourite", "enjoy", "hate"],
        Topic::Goals => &["goal", "want"],
        Topic::Diet => &["vegetarian", "vegan", "pescatarian", "eat"],
        _ => &[],
    };
    let facts: Vec<String> = known_facts(ctx)
        .into_iter()
        .filter(|f| words.is_empty() || words.iter().any(|w| f.to_lowercase().contains(w)))
        .collect();
    if facts.is_empty() {
        a.core.push("You haven't told me about that yet.".into());
    } else {
        a.core
            .push(format!("From what you've told me, {}.", list(&facts)));
    }
    a
}

/// The answer without tools (no tool ran, or the plan needs none).
pub fn answer(ctx: &CoachContext, message: &str) -> String {
    let (intent, _) = plan(ctx, message);
    reply(ctx, &intent, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CoachContext {
        CoachContext {
            // 09:00 UTC on a Monday.
            now: Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap(),
            ..Default::default()
        }
    }

    fn calls(message: &str) -> Vec<PlannedCall> {
        plan(&ctx(), message).1
    }

    #[test]
    fn sentences_that_log_food() {
        let table: &[(&str, &[&str])] = &[
            (
                "I just had 2 eggs and a slice of toast",
                &["2 eggs", "a slice of toast"],
            ),
            ("I ate a banana", &["a banana"]),
            (
                "For breakfast I had oatmeal with a banana.",
                &["oatmeal", "a banana"],
            ),
            ("i've eaten an apple this morning", &["an apple"]),
            ("Log 200 g chicken breast", &["200 g chicken breast"]),
            ("I drank a glass of milk", &["a glass of milk"]),
        ];
        for (message, expected) in table {
            let c = calls(message);
            let got: Vec<&str> = c
                .iter()
                .map(|c| {
                    assert_eq!(c.name, "log_food", "{message}");
                    c.arguments["description"].as_str().unwrap()
                })
                .collect();
            assert_eq!(&got, expected, "{message}");
        }
    }

    #[test]
    fn sentences_that_must_not_call_a_tool() {
        for message in [
            "I love pizza",
            "I had a great day",
            "I had a headache this morning",
            "What should I eat for breakfast?",
            "Did I have eggs today?",
            "I'm allergic to peanuts",
            "eggs are healthy",
            "What's my name?",
            "What's the capital of France?",
            "hello",
            "I haven't had breakfast",
            "remind me later",
            "My name is Alice",
            "thanks!",
        ] {
            assert!(calls(message).is_empty(), "{message}: {:?}", calls(message));
        }
    }

    #[test]
    fn reminders_from_sentences() {
        let c = calls("remind me to drink water every day at 10:00");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name, "create_reminder");
        assert_eq!(
            c[0].arguments,
            json!({"type": "daily", "message": "Drink water", "daily_time": "10:00", "timezone": "UTC"})
        );
        let c = calls("Remind me every day at 7pm to take my vitamins");
        assert_eq!(c[0].arguments["daily_time"], "19:00");
        assert_eq!(c[0].arguments["message"], "Take my vitamins");
        let c = calls("remind me to call mum tomorrow at 9am");
        assert_eq!(c[0].arguments["type"], "one_time");
        assert_eq!(c[0].arguments["trigger_time"], "2026-06-02T09:00:00+00:00");
        // Today at 08:00 has passed at 09:00: tomorrow.
        let c = calls("remind me at 8:00 to stretch");
        assert_eq!(c[0].arguments["trigger_time"], "2026-06-02T08:00:00+00:00");
        let c = calls("remind me to stretch at 18:30");
        assert_eq!(c[0].arguments["trigger_time"], "2026-06-01T18:30:00+00:00");
    }

    #[test]
    fn intents_that_read_data() {
        assert_eq!(calls("how am I doing today?")[0].name, "get_food_summary");
        let week = calls("How many calories did I eat this week?");
        assert_eq!(week.len(), 7);
        assert_eq!(week[6].arguments["date"], "2026-06-01");
        assert_eq!(calls("what's my XP?")[0].name, "get_xp");
        assert_eq!(calls("how long is my streak")[0].name, "get_xp");
    }

    #[test]
    fn logging_says_what_was_logged_and_the_xp() {
        let c = ctx();
        let (intent, _) = plan(&c, "I just had 2 eggs and a slice of toast");
        let results = vec![
            (
                "log_food".to_string(),
                json!({"logged": "2 eggs", "calories": 143.0}),
            ),
            (
                "log_food".to_string(),
                json!({"logged": "a slice of toast", "calories": 66.5}),
            ),
        ];
        let r = reply(&c, &intent, &results);
        assert!(r.starts_with("(offline mode)"), "{r}");
        assert!(
            r.contains("Logged 2 eggs (~143 kcal) and a slice of toast (~66 kcal)"),
            "{r}"
        );
        assert!(r.contains("+20 XP"), "{r}");
    }

    #[test]
    fn a_saved_meal_is_recognised_when_the_user_says_they_ate_it() {
        let kw = vec!["oats".to_string()];
        let meals = [("Usual breakfast", kw.as_slice())];
        assert_eq!(eaten_meal("I had my usual breakfast", meals), Some(0));
        assert_eq!(eaten_meal("just ate my oats", meals), Some(0));
        assert_eq!(eaten_meal("what is in my usual breakfast?", meals), None);
        assert_eq!(eaten_meal("I had toast", meals), None);

        let mut c = ctx();
        c.saved_meals = vec![SavedMeal {
            id: "m1".into(),
            name: "Usual breakfast".into(),
            keywords: kw.clone(),
        }];
        let log_meal = PlannedCall {
            name: "log_meal",
            arguments: json!({"name": "m1"}),
        };
        let (intent, planned) = plan(&c, "I had my usual breakfast");
        assert_eq!(planned, vec![log_meal.clone()]);
        let logged = (
            "log_meal".to_string(),
            json!({"logged_meal": "Usual breakfast", "calories": 412.4}),
        );
        let r = reply(&c, &intent, std::slice::from_ref(&logged));
        assert!(
            r.contains("Logged your Usual breakfast (about 412 kcal): +10 XP."),
            "{r}"
        );
        // A keyword names the meal: it is not ALSO logged as a food.
        assert_eq!(plan(&c, "just ate my oats").1, vec![log_meal.clone()]);
        // Another food in the sentence is logged beside it.
        let (intent, planned) = plan(&c, "I had my usual breakfast and a banana");
        assert_eq!(planned.len(), 2, "{planned:?}");
        assert_eq!(planned[0], log_meal);
        assert_eq!(planned[1].name, "log_food");
        assert_eq!(planned[1].arguments["description"], "a banana");
        let r = reply(
            &c,
            &intent,
            &[
                logged,
                (
                    "log_food".to_string(),
                    json!({"logged": "a banana", "calories": 105.0}),
                ),
            ],
        );
        assert!(
            r.contains(
                "Logged your Usual breakfast (about 412 kcal) and a banana (~105 kcal): +20 XP."
            ),
            "{r}"
        );
        // Yesterday's meal is logged yesterday.
        let (_, planned) = plan(&c, "I had my usual breakfast yesterday");
        assert_eq!(
            planned[0].arguments["timestamp"],
            "2026-05-31T09:00:00+00:00"
        );
        // A question about the meal logs nothing.
        for question in [
            "what is in my usual breakfast?",
            "did I eat my usual breakfast?",
        ] {
            let (_, planned) = plan(&c, question);
            assert!(
                planned.iter().all(|p| !p.name.starts_with("log_")),
                "{question}: {planned:?}"
            );
        }
        // A meal that could not be logged says why.
        let (intent, _) = plan(&c, "I had my usual breakfast");
        let r = reply(
            &c,
            &intent,
            &[(
                "log_meal".to_string(),
                json!({"error": "no saved meal is named \"m1\""}),
            )],
        );
        assert!(r.contains("I couldn't log your Usual breakfast"), "{r}");
        // Without saved meals the sentence names no food.
        assert!(plan(&ctx(), "I had my usual breakfast").1.is_empty());
    }

    #[test]
    fn a_suggestion_respects_diet_allergies_and_the_meal() {
        let mut c = ctx();
        c.memories = vec!["you are vegan".into(), "I'm allergic to peanuts".into()];
        let r = answer(&c, "What should I eat for breakfast?");
        assert!(r.contains("For breakfast"), "{r}");
        assert!(r.contains("oatmeal"), "{r}");
        assert!(!r.contains("peanut") && !r.contains("egg"), "{r}");
        c.memories = vec!["you love pizza".into()];
        let r = answer(&c, "what should I eat for dinner?");
        assert!(r.contains("For dinner"), "{r}");
    }

    #[test]
    fn recall_uses_memories_and_the_clients_history() {
        let mut c = ctx();
        c.history = vec!["My name is Alice".into(), "I love pizza".into()];
        assert_eq!(
            answer(&c, "What's my name?"),
            "(offline mode) Your name is Alice."
        );
        let r = answer(&c, "What's my favorite food?");
        assert!(r.contains("you love pizza"), "{r}");
        c.history.clear();
        c.memories = vec![
            "you love pizza".into(),
            "you are allergic to peanuts".into(),
        ];
        let r = answer(&c, "what do you know about me?");
        assert!(
            r.contains("you love pizza and you are allergic to peanuts"),
            "{r}"
        );
        assert!(!r.contains("loves"), "{r}");
        let r = answer(&c, "What am I allergic to?");
        assert!(r.contains("peanuts") && !r.contains("pizza"), "{r}");
    }

    #[test]
    fn tone_and_brevity_change_the_wording() {
        let mut c = ctx();
        let results = vec![(
            "log_food".to_string(),
            json!({"logged": "a banana", "calories": 105.0}),
        )];
        let (intent, _) = plan(&c, "I ate a banana");
        let friendly = reply(&c, &intent, &results);
        c.tone = "formal".into();
        let formal = reply(&c, &intent, &results);
        assert!(
            friendly.contains("Nice!") && formal.contains("Noted.") && !formal.contains('!'),
            "{friendly} / {formal}"
        );
        c.brevity = "brief".into();
        let brief = reply(&c, &intent, &results);
        c.brevity = "detailed".into();
        c.tone = "motivational".into();
        let detailed = reply(&c, &intent, &results);
        assert!(brief.len() < formal.len(), "{brief} / {formal}");
        assert!(detailed.contains("Keep it up"), "{detailed}");
    }

    #[test]
    fn off_topic_is_a_plain_refusal() {
        let r = answer(&ctx(), "What's the capital of France?");
        assert!(r.contains("can't help with that"), "{r}");
    }

    #[test]
    fn goals_come_from_the_profile() {
        let g = Goals::from_profile(
            &json!({"weight_kg": 70, "height_cm": 175, "age": 30, "sex": "male"}),
        );
        assert_eq!(g.protein_g, 84.0);
        assert!((2300.0..=2450.0).contains(&g.calories), "{g:?}");
        assert_eq!(
            Goals::from_profile(&json!({"daily_calorie_goal": "1800"})).calories,
            1800.0
        );
        assert_eq!(Goals::from_profile(&json!({})), Goals::default());
    }
}
