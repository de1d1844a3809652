//! Long-term facts from what a user says ("I love pizza", "I'm allergic to
//! peanuts"). Deterministic phrase rules: cheap, explainable, and good for
//! the facts a coach needs; with a real model configured it may extract them.
//!
//! Facts are phrased in the second person ("you love pizza"), the way the
//! coach says them back. A fact that can hold only one value at a time
//! (diet, weight goal, name) names its `slot`: a newer one replaces the old.

/// A fact worth remembering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub kind: &'static str,
    /// Second person: "you are allergic to peanuts".
    pub text: String,
    /// Single-valued facts: a new one supersedes the user's earlier one.
    pub slot: Option<&'static str>,
}

/// (pattern, kind, phrase, slot). A pattern ending in a space takes an
/// object running to the end of the clause ("." "!" "?" "," " and " ...).
const RULES: &[(&str, &str, &str, Option<&str>)] = &[
    ("i'm allergic to ", "allergy", "you are allergic to", None),
    ("i am allergic to ", "allergy", "you are allergic to", None),
    (
        "i have an allergy to ",
        "allergy",
        "you are allergic to",
        None,
    ),
    (
        "my favorite food is ",
        "preference",
        "your favorite food is",
        None,
    ),
    (
        "my favourite food is ",
        "preference",
        "your favorite food is",
        None,
    ),
    ("i love ", "preference", "you love", None),
    ("i really love ", "preference", "you love", None),
    ("i like ", "preference", "you like", None),
    ("i enjoy ", "preference", "you enjoy", None),
    ("i hate ", "dislike", "you hate", None),
    ("i dislike ", "dislike", "you dislike", None),
    ("i don't eat ", "diet", "you don't eat", None),
    ("i do not eat ", "diet", "you don't eat", None),
    ("i can't eat ", "diet", "you can't eat", None),
    ("i cannot eat ", "diet", "you can't eat", None),
    ("my goal is to ", "goal", "your goal is to", None),
    ("i want to ", "goal", "you want to", None),
    (
        "my goal weight is ",
        "goal",
        "your goal weight is",
        Some("weight_goal"),
    ),
    (
        "my target weight is ",
        "goal",
        "your goal weight is",
        Some("weight_goal"),
    ),
    ("my name is ", "name", "your name is", Some("name")),
    ("call me ", "name", "your name is", Some("name")),
];

/// Diets: "I'm vegetarian (now)", "I am a vegan", "I eat meat again".
const DIETS: &[(&str, &str)] = &[
    ("vegetarian", "you are vegetarian"),
    ("vegan", "you are vegan"),
    ("pescatarian", "you are pescatarian"),
    ("pescetarian", "you are pescatarian"),
    ("keto", "you eat keto"),
];

const CLAUSE_ENDS: &[&str] = &[
    ".",
    "!",
    "?",
    ",",
    ";",
    " and ",
    " but ",
    " because ",
    " so ",
];
/// Words that only say when: "my goal is 70 kg now".
const TRAILING: &[&str] = &[" now", " these days", " nowadays", " from now on", " again"];

fn clause(rest: &str) -> &str {
    let end = CLAUSE_ENDS
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    let mut object = rest[..end].trim();
    for t in TRAILING {
        if let Some(s) = object.strip_suffix(t) {
            object = s.trim_end();
        }
    }
    object
}

/// Whether `at` starts a word of `lower`.
fn word_start(lower: &str, at: usize) -> bool {
    at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric()
}

/// A weight such as "70 kg" or "150 lbs".
fn is_weight(object: &str) -> bool {
    let has_digit = object.chars().any(|c| c.is_ascii_digit());
    has_digit
        && ["kg", "kilo", "lb", "pound", "stone"]
            .iter()
            .any(|u| object.contains(u))
}

/// Facts stated in `message`, each at most 200 chars, deduplicated, one per slot.
pub fn extract(message: &str) -> Vec<Fact> {
    let lower = message.to_lowercase().replace('’', "'");
    // Questions state nothing ("what's my name?", "do I like pizza?").
    let trimmed = lower.trim();
    if trimmed.ends_with('?')
        || [
            "what", "who", "do i", "does", "am i", "which", "how", "why", "when", "where",
        ]
        .iter()
        .any(|q| trimmed.starts_with(q))
    {
        return Vec::new();
    }
    let mut out: Vec<Fact> = Vec::new();
    let push = |out: &mut Vec<Fact>, fact: Fact| {
        let text: String = fact.text.chars().take(200).collect();
        let fact = Fact { text, ..fact };
        if out.iter().any(|f| f.text == fact.text) {
            return;
        }
        // One value per slot: the later statement in the message wins.
        if let Some(slot) = fact.slot {
            out.retain(|f| f.slot != Some(slot));
        }
        out.push(fact);
    };
    for (pattern, kind, phrase, slot) in RULES {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(pattern) {
            let at = from + pos;
            from = at + pattern.len();
            // Whole words only: "i like" must not match inside "hi like".
            if !word_start(&lower, at) {
                continue;
            }
            let object = clause(&lower[from..]);
            if object.is_empty() || object.split_whitespace().count() > 12 {
                continue;
            }
            let (kind, phrase, slot) = match (*pattern, is_weight(object)) {
                // "my goal is to weigh 70 kg" / "I want to weigh 70 kg".
                ("my goal is to " | "i want to ", true) if object.starts_with("weigh") => {
                    ("goal", "your goal weight is", Some("weight_goal"))
                }
                _ => (*kind, *phrase, *slot),
            };
            let object = if slot == Some("weight_goal") {
                object.trim_start_matches("weigh ").trim()
            } else {
                object
            };
            let object = if kind == "name" {
                capitalise(object)
            } else {
                object.to_owned()
            };
            push(
                &mut out,
                Fact {
                    kind,
                    text: format!("{phrase} {object}"),
                    slot,
                },
            );
        }
    }
    // "my goal is 70 kg": a weight goal without "weight".
    if let Some(pos) = lower.find("my goal is ") {
        let object = clause(&lower[pos + "my goal is ".len()..]);
        if word_start(&lower, pos) && is_weight(object) && !object.starts_with("to ") {
            push(
                &mut out,
                Fact {
                    kind: "goal",
                    text: format!("your goal weight is {object}"),
                    slot: Some("weight_goal"),
                },
            );
        }
    }
    for (diet, text) in DIETS {
        for lead in [
            "i'm ",
            "i am ",
            "i'm a ",
            "i am a ",
            "i'm now ",
            "i am now ",
            "i eat ",
        ] {
            let pattern = format!("{lead}{diet}");
            if let Some(at) = lower.find(&pattern) {
                let end = at + pattern.len();
                let whole = lower[end..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric());
                if word_start(&lower, at) && whole {
                    push(
                        &mut out,
                        Fact {
                            kind: "diet",
                            text: (*text).to_owned(),
                            slot: Some("diet"),
                        },
                    );
                }
            }
        }
    }
    for lead in [
        "i eat meat",
        "i'm not vegetarian",
        "i am not vegetarian",
        "i'm not vegan",
    ] {
        if let Some(at) = lower.find(lead) {
            if word_start(&lower, at) {
                push(
                    &mut out,
                    Fact {
                        kind: "diet",
                        text: "you eat meat".into(),
                        slot: Some("diet"),
                    },
                );
            }
        }
    }
    out
}

fn capitalise(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A memory as the coach says it to the user: facts we extracted are in
/// the second person already; ones a client stored as given ("I'm allergic
/// to peanuts", "My name is Alice") get their pronouns turned around.
pub fn second_person(memory: &str) -> String {
    let m = memory.trim().trim_end_matches(['.', '!']);
    let lower = m.to_lowercase();
    if lower.starts_with("you ") || lower.starts_with("you're ") || lower.starts_with("your ") {
        return m.to_owned();
    }
    let mut out = Vec::new();
    let mut first = true;
    for w in m.split_whitespace() {
        let l = w.to_lowercase().replace('’', "'");
        let swapped = match l.as_str() {
            "i" => Some("you"),
            "i'm" => Some("you're"),
            "i've" => Some("you've"),
            "i'll" => Some("you'll"),
            "i'd" => Some("you'd"),
            "am" if out.last().is_some_and(|p: &String| p == "you") => Some("are"),
            "my" => Some("your"),
            "me" => Some("you"),
            "mine" => Some("yours"),
            "myself" => Some("yourself"),
            _ => None,
        };
        let mut w = swapped.map(str::to_owned).unwrap_or_else(|| w.to_owned());
        // Lower-case a capitalised first word ("My" → "your"), keep names.
        if first && swapped.is_some() {
            w = w.to_lowercase();
        }
        first = false;
        out.push(w);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(message: &str) -> Vec<String> {
        extract(message).into_iter().map(|f| f.text).collect()
    }

    #[test]
    fn a_stated_love_reads_right_in_the_second_person() {
        assert_eq!(
            extract("I love pizza"),
            vec![Fact {
                kind: "preference",
                text: "you love pizza".into(),
                slot: None,
            }]
        );
    }

    #[test]
    fn an_allergy_is_remembered_up_to_the_end_of_the_clause() {
        let facts = extract("Hi! I'm allergic to peanuts, so be careful.");
        assert_eq!(facts[0].text, "you are allergic to peanuts");
        assert_eq!(facts[0].kind, "allergy");
    }

    #[test]
    fn several_facts_in_one_message_are_all_found() {
        let t = texts("I am vegetarian and I hate mushrooms. My goal is to run a 10k.");
        assert!(t.contains(&"you are vegetarian".to_string()), "{t:?}");
        assert!(t.contains(&"you hate mushrooms".to_string()), "{t:?}");
        assert!(
            t.contains(&"your goal is to run a 10k".to_string()),
            "{t:?}"
        );
    }

    #[test]
    fn updates_fill_the_same_slot() {
        let veg = extract("I'm vegetarian now");
        assert_eq!(veg[0].text, "you are vegetarian");
        assert_eq!(veg[0].slot, Some("diet"));
        assert_eq!(extract("I eat meat again")[0].slot, Some("diet"));
        let goal = extract("my goal is 70 kg now");
        assert_eq!(goal.len(), 1, "{goal:?}");
        assert_eq!(goal[0].text, "your goal weight is 70 kg");
        assert_eq!(goal[0].slot, Some("weight_goal"));
        assert_eq!(
            extract("My goal is to weigh 68 kg")[0].text,
            "your goal weight is 68 kg"
        );
        let name = extract("my name is alice");
        assert_eq!(name[0].text, "your name is Alice");
        assert_eq!(name[0].slot, Some("name"));
    }

    #[test]
    fn questions_and_small_talk_state_no_facts() {
        assert!(extract("What's my favorite food?").is_empty());
        assert!(extract("What's my name?").is_empty());
        assert!(extract("do I like pizza").is_empty());
        assert!(extract("How are you today").is_empty());
        assert!(extract("Ethi like").is_empty());
        assert!(extract("I'm veganish").is_empty());
    }

    #[test]
    fn memories_stored_as_given_are_said_back_in_the_second_person() {
        assert_eq!(
            second_person("I'm allergic to peanuts."),
            "you're allergic to peanuts"
        );
        assert_eq!(second_person("My name is Alice"), "your name is Alice");
        assert_eq!(second_person("I am vegan"), "you are vegan");
        assert_eq!(second_person("you love pizza"), "you love pizza");
        assert_eq!(second_person("Bob gave me a bike"), "Bob gave you a bike");
    }
}
