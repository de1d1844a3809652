//! Long-term facts from what a user says ("I love pizza", "I'm allergic to
//! peanuts"). Deterministic phrase rules: cheap, explainable, and good for
//! the facts a coach needs; a provider-side extractor can replace it later.

/// A fact worth remembering, phrased in the third person for prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub kind: &'static str,
    pub text: String,
}

/// (pattern, kind, how to phrase it). The object runs to the end of the
/// clause (".", "!", "?", ",", " and ", " but ").
const RULES: &[(&str, &str, &str)] = &[
    ("i'm allergic to ", "allergy", "is allergic to"),
    ("i am allergic to ", "allergy", "is allergic to"),
    ("my favorite food is ", "preference", "favorite food is"),
    ("my favourite food is ", "preference", "favorite food is"),
    ("i love ", "preference", "loves"),
    ("i really love ", "preference", "loves"),
    ("i like ", "preference", "likes"),
    ("i enjoy ", "preference", "enjoys"),
    ("i hate ", "dislike", "hates"),
    ("i dislike ", "dislike", "dislikes"),
    ("i don't eat ", "diet", "does not eat"),
    ("i do not eat ", "diet", "does not eat"),
    ("i can't eat ", "diet", "cannot eat"),
    ("i'm vegetarian", "diet", "is vegetarian"),
    ("i am vegetarian", "diet", "is vegetarian"),
    ("i'm vegan", "diet", "is vegan"),
    ("i am vegan", "diet", "is vegan"),
    ("my goal is to ", "goal", "wants to"),
    ("i want to ", "goal", "wants to"),
];

const CLAUSE_ENDS: &[&str] = &[".", "!", "?", ",", ";", " and ", " but ", " because "];

/// Facts stated in `message`, each at most 200 chars, deduplicated.
pub fn extract(message: &str) -> Vec<Fact> {
    let lower = message.to_lowercase().replace('’', "'");
    let mut out: Vec<Fact> = Vec::new();
    for (pattern, kind, phrase) in RULES {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(pattern) {
            let at = from + pos;
            from = at + pattern.len();
            // Whole words only: "i like" must not match inside "hi like".
            if at > 0 && lower.as_bytes()[at - 1].is_ascii_alphanumeric() {
                continue;
            }
            let text = if pattern.ends_with(' ') {
                let rest = &lower[from..];
                let end = CLAUSE_ENDS
                    .iter()
                    .filter_map(|e| rest.find(e))
                    .min()
                    .unwrap_or(rest.len());
                let object = rest[..end].trim();
                if object.is_empty() || object.split_whitespace().count() > 12 {
                    continue;
                }
                format!("{phrase} {object}")
            } else {
                phrase.to_string()
            };
            let text: String = text.chars().take(200).collect();
            if !out.iter().any(|f| f.text == text) {
                out.push(Fact { kind, text });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stated_love_becomes_a_preference() {
        assert_eq!(
            extract("I love pizza"),
            vec![Fact {
                kind: "preference",
                text: "loves pizza".into()
            }]
        );
    }

    #[test]
    fn an_allergy_is_remembered_up_to_the_end_of_the_clause() {
        let facts = extract("Hi! I'm allergic to peanuts, so be careful.");
        assert_eq!(facts[0].text, "is allergic to peanuts");
        assert_eq!(facts[0].kind, "allergy");
    }

    #[test]
    fn several_facts_in_one_message_are_all_found() {
        let facts = extract("I am vegetarian and I hate mushrooms. My goal is to run a 10k.");
        let texts: Vec<_> = facts.iter().map(|f| f.text.as_str()).collect();
        assert!(texts.contains(&"is vegetarian"));
        assert!(texts.contains(&"hates mushrooms"));
        assert!(texts.contains(&"wants to run a 10k"));
    }

    #[test]
    fn questions_and_small_talk_state_no_facts() {
        assert!(extract("What's my favorite food?").is_empty());
        assert!(extract("How are you today").is_empty());
        assert!(extract("Ethi like").is_empty());
    }
}
