//! Profile fields and coaching preferences.
//!
//! Known fields are typed and range-checked, and stored in one canonical form
//! (numbers as numbers, enums lowercase, time zones as their IANA name).
//! Unknown fields are kept so the coach can remember things this module does
//! not know about, but only as short strings: they end up in prompts, so no
//! nested structures or unbounded text.

use serde_json::{Map, Number, Value};

use crate::time::parse_timezone;

/// What an unset `timezone` reads as.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// The zone a stored profile lives in: its `timezone`, else UTC.
pub fn timezone(profile: &Value) -> chrono_tz::Tz {
    timezone_named(profile.get("timezone").and_then(Value::as_str))
}

/// The zone a stored `timezone` name means: UTC when unset, and when not an
/// IANA name (profiles are checked on the way in, so only old rows).
pub fn timezone_named(name: Option<&str>) -> chrono_tz::Tz {
    name.and_then(|n| parse_timezone(n).ok())
        .unwrap_or_default()
}
pub const SEXES: &[&str] = &["male", "female", "other", "prefer_not_to_say"];
/// Ours, then the original service's `formal` and `casual` (its clients
/// keep working; stored as given, read through [`canonical_tone`]).
pub const TONES: &[&str] = &[
    "friendly",
    "professional",
    "motivational",
    "empathetic",
    "direct",
    "formal",
    "casual",
];
/// Ours, then the original's `brief` and `detailed`.
pub const BREVITIES: &[&str] = &["short", "medium", "long", "brief", "detailed"];

/// The original service's tone values, as ours where they mean the same
/// (`formal` is `professional`); `casual` has no twin and stays.
pub fn canonical_tone(tone: &str) -> &str {
    match tone {
        "formal" => "professional",
        t => t,
    }
}

/// `brief` is `short`, `detailed` is `long`.
pub fn canonical_brevity(brevity: &str) -> &str {
    match brevity {
        "brief" => "short",
        "detailed" => "long",
        b => b,
    }
}
pub const DEFAULT_TONE: &str = "friendly";
pub const DEFAULT_BREVITY: &str = "medium";
pub const MAX_NAME_CHARS: usize = 64;
/// The longest goal, and the longest value of an unknown field.
pub const MAX_TEXT_CHARS: usize = 500;
pub const MAX_GOALS: usize = 20;
/// A profile (and the preferences) may hold this many fields and this many
/// bytes of JSON: every chat sends it to the model.
pub const MAX_FIELDS: usize = 50;
pub const MAX_BYTES: usize = 16_384;
/// Why a text with a NUL character is refused.
pub const NUL: &str = "must not contain NUL characters";

/// A field that failed validation: its name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub why: String,
}

/// A profile field or preference name: 1–64 chars of `[a-z0-9_]`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {MAX_NAME_CHARS} characters of a-z, 0-9 and _, got {name:?}"
        ))
    }
}

/// The stored form of profile field `name` set to `value` (not null: the
/// caller treats null as removal), or why it is refused. `name` must have
/// passed [`check_name`].
pub fn profile_value(name: &str, value: &Value) -> Result<Value, String> {
    match name {
        "age" => {
            let n = number(value).ok_or("must be an integer from 1 to 130")?;
            if n.fract() != 0.0 || !(1.0..=130.0).contains(&n) {
                return Err(format!("must be an integer from 1 to 130, got {n}"));
            }
            Ok(Value::from(n as i64))
        }
        "height_cm" => ranged(value, 30.0, 300.0),
        "weight_kg" => ranged(value, 2.0, 700.0),
        "sex" => one_of(value, SEXES),
        "timezone" => {
            let s = value
                .as_str()
                .ok_or("must be an IANA time zone name such as \"Europe/Berlin\"")?;
            let tz = parse_timezone(s.trim())?;
            Ok(Value::from(tz.name()))
        }
        "goals" => goals(value),
        _ => free_text(value),
    }
}

/// Validates a whole profile (as sent to `POST /users`): the stored form of
/// every field, or the first field that is refused.
pub fn validate_profile(profile: &Map<String, Value>) -> Result<Map<String, Value>, FieldError> {
    let size = Value::Object(profile.clone()).to_string().len();
    if profile.len() > MAX_FIELDS || size > MAX_BYTES {
        return Err(FieldError {
            field: "profile".into(),
            why: format!(
                "may hold at most {MAX_FIELDS} fields and {MAX_BYTES} bytes, got {} and {size}",
                profile.len()
            ),
        });
    }
    profile
        .iter()
        .map(|(name, value)| {
            let err = |why: String| FieldError {
                field: name.clone(),
                why,
            };
            check_name(name).map_err(err)?;
            if value.is_null() {
                return Err(err("must not be null".into()));
            }
            profile_value(name, value)
                .map(|v| (name.clone(), v))
                .map_err(err)
        })
        .collect()
}

/// The stored form of preference `name` set to `value` (not null), or why it
/// is refused. `name` must have passed [`check_name`].
pub fn preference_value(name: &str, value: &Value) -> Result<Value, String> {
    match name {
        "tone" => one_of(value, TONES),
        "brevity" => one_of(value, BREVITIES),
        _ => free_text(value),
    }
}

/// The profile as read: `timezone` is `UTC` when unset.
pub fn with_profile_defaults(stored: &Value) -> Value {
    let mut out = stored.as_object().cloned().unwrap_or_default();
    out.entry("timezone")
        .or_insert_with(|| Value::from(DEFAULT_TIMEZONE));
    Value::Object(out)
}

/// The preferences as read: tone `friendly` and brevity `medium` unless set.
pub fn with_preference_defaults(stored: &Value) -> Value {
    let mut out = stored.as_object().cloned().unwrap_or_default();
    out.entry("tone")
        .or_insert_with(|| Value::from(DEFAULT_TONE));
    out.entry("brevity")
        .or_insert_with(|| Value::from(DEFAULT_BREVITY));
    Value::Object(out)
}

/// A finite number, sent as a JSON number or as a numeric string ("72.5"):
/// chat clients often send every value as text.
fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

fn ranged(value: &Value, min: f64, max: f64) -> Result<Value, String> {
    let want = || format!("must be a number from {min} to {max}");
    let n = number(value).ok_or_else(want)?;
    if !(min..=max).contains(&n) {
        return Err(format!("{}, got {n}", want()));
    }
    // Whole numbers stay integers (180, not 180.0).
    if n.fract() == 0.0 {
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n).map(Value::Number).ok_or_else(want)
}

fn one_of(value: &Value, allowed: &[&str]) -> Result<Value, String> {
    let want = || format!("must be one of {}", allowed.join(", "));
    let s = value.as_str().ok_or_else(want)?.trim().to_ascii_lowercase();
    if allowed.contains(&s.as_str()) {
        Ok(Value::String(s))
    } else {
        Err(format!("{}, got {s:?}", want()))
    }
}

fn text(s: &str) -> Result<Value, String> {
    // PostgreSQL can store no NUL, in text or in jsonb.
    if s.contains('\0') {
        return Err(NUL.into());
    }
    let n = s.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(format!(
            "must be at most {MAX_TEXT_CHARS} characters, got {n}"
        ));
    }
    Ok(Value::from(s))
}

fn goals(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(s) => text(s),
        Value::Array(items) => {
            if items.len() > MAX_GOALS {
                return Err(format!(
                    "must have at most {MAX_GOALS} goals, got {}",
                    items.len()
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let s = item
                        .as_str()
                        .ok_or_else(|| format!("goal {i} must be a string"))?;
                    text(s).map_err(|why| format!("goal {i} {why}"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        _ => Err(format!(
            "must be a string or an array of at most {MAX_GOALS} strings"
        )),
    }
}

/// An unknown field: strings kept, numbers and booleans kept as their text.
fn free_text(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(s) => text(s),
        Value::Number(n) => Ok(Value::String(n.to_string())),
        Value::Bool(b) => Ok(Value::String(b.to_string())),
        _ => Err("must be a string, number or boolean".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_short_lowercase_snake_case() {
        assert!(check_name("favourite_food_2").is_ok());
        assert!(check_name(&"a".repeat(64)).is_ok());
        for bad in ["", "Age", "eye-color", "a b", "ä", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn age_is_a_whole_number_from_1_to_130() {
        assert_eq!(profile_value("age", &json!(30)), Ok(json!(30)));
        assert_eq!(profile_value("age", &json!("42")), Ok(json!(42)));
        assert_eq!(profile_value("age", &json!(1)), Ok(json!(1)));
        assert_eq!(profile_value("age", &json!(130.0)), Ok(json!(130)));
        for bad in [
            json!(0),
            json!(131),
            json!(-5),
            json!(30.5),
            json!("thirty"),
            json!(true),
            json!([30]),
        ] {
            assert!(profile_value("age", &bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn height_and_weight_are_bounded_numbers() {
        assert_eq!(profile_value("height_cm", &json!(180)), Ok(json!(180)));
        assert_eq!(
            profile_value("height_cm", &json!("172.5")),
            Ok(json!(172.5))
        );
        assert_eq!(profile_value("height_cm", &json!(30)), Ok(json!(30)));
        assert!(profile_value("height_cm", &json!(29.9)).is_err());
        assert!(profile_value("height_cm", &json!(300.1)).is_err());
        assert_eq!(profile_value("weight_kg", &json!(2)), Ok(json!(2)));
        assert_eq!(profile_value("weight_kg", &json!(700)), Ok(json!(700)));
        assert!(profile_value("weight_kg", &json!(1.9)).is_err());
        assert!(profile_value("weight_kg", &json!(701)).is_err());
        assert!(profile_value("weight_kg", &json!("NaN")).is_err());
        assert!(profile_value("weight_kg", &json!("inf")).is_err());
        assert!(profile_value("weight_kg", &json!(null)).is_err());
    }

    #[test]
    fn sex_is_one_of_four_values() {
        for ok in SEXES {
            assert_eq!(profile_value("sex", &json!(ok)), Ok(json!(ok)));
        }
        assert_eq!(
            profile_value("sex", &json!(" Female ")),
            Ok(json!("female"))
        );
        assert!(profile_value("sex", &json!("unknown")).is_err());
        assert!(profile_value("sex", &json!(1)).is_err());
    }

    #[test]
    fn timezone_must_be_an_iana_name() {
        assert_eq!(
            profile_value("timezone", &json!("Europe/Berlin")),
            Ok(json!("Europe/Berlin"))
        );
        assert!(profile_value("timezone", &json!("Mars/Olympus")).is_err());
        assert!(profile_value("timezone", &json!(2)).is_err());
    }

    #[test]
    fn a_stored_profile_lives_in_its_timezone_else_utc() {
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(timezone(&json!({"timezone": "Europe/Berlin"})), berlin);
        assert_eq!(timezone(&json!({})), chrono_tz::UTC);
        assert_eq!(timezone(&json!({"timezone": 3})), chrono_tz::UTC);
        assert_eq!(timezone_named(Some("Mars/Olympus")), chrono_tz::UTC);
        assert_eq!(timezone_named(None), chrono_tz::UTC);
    }

    #[test]
    fn goals_are_a_string_or_a_short_list_of_strings() {
        assert_eq!(
            profile_value("goals", &json!("run a 10k")),
            Ok(json!("run a 10k"))
        );
        let list = json!(["sleep more", "eat greens"]);
        assert_eq!(profile_value("goals", &list), Ok(list.clone()));
        assert!(profile_value("goals", &json!("x".repeat(500))).is_ok());
        assert!(profile_value("goals", &json!("x".repeat(501))).is_err());
        assert!(profile_value("goals", &json!(vec!["g"; 20])).is_ok());
        assert!(profile_value("goals", &json!(vec!["g"; 21])).is_err());
        assert!(profile_value("goals", &json!(["ok", 3])).is_err());
        assert!(profile_value("goals", &json!(["ok", "y".repeat(501)])).is_err());
        assert!(profile_value("goals", &json!({"a": "b"})).is_err());
    }

    #[test]
    fn unknown_fields_are_kept_as_text() {
        assert_eq!(
            profile_value("favourite_food", &json!("pho")),
            Ok(json!("pho"))
        );
        assert_eq!(profile_value("shoe_size", &json!(43)), Ok(json!("43")));
        assert_eq!(profile_value("vegan", &json!(true)), Ok(json!("true")));
        for bad in [json!(null), json!({"a": 1}), json!(["a"])] {
            assert!(profile_value("notes", &bad).is_err(), "{bad} accepted");
        }
        assert!(profile_value("notes", &json!("n".repeat(501))).is_err());
    }

    #[test]
    fn text_with_a_nul_character_is_refused_everywhere_text_is_kept() {
        let nul = json!("a\u{0}b");
        assert_eq!(profile_value("notes", &nul), Err(NUL.to_owned()));
        assert!(profile_value("goals", &nul).is_err());
        assert!(profile_value("goals", &json!(["ok", "a\u{0}b"])).is_err());
        assert_eq!(preference_value("coach_name", &nul), Err(NUL.to_owned()));
    }

    #[test]
    fn a_whole_profile_is_validated_and_normalised() {
        let p = json!({"age": "30", "sex": "MALE", "city": "Oslo", "likes": 3});
        let out = validate_profile(p.as_object().unwrap()).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"age": 30, "sex": "male", "city": "Oslo", "likes": "3"})
        );
        let bad = json!({"age": 30, "height_cm": 5});
        let e = validate_profile(bad.as_object().unwrap()).unwrap_err();
        assert_eq!(e.field, "height_cm");
        let bad = json!({"Bad Name": "x"});
        assert_eq!(
            validate_profile(bad.as_object().unwrap())
                .unwrap_err()
                .field,
            "Bad Name"
        );
        let bad = json!({"city": null});
        assert_eq!(
            validate_profile(bad.as_object().unwrap())
                .unwrap_err()
                .field,
            "city"
        );
    }

    #[test]
    fn preferences_know_tone_and_brevity() {
        for ok in TONES {
            assert_eq!(preference_value("tone", &json!(ok)), Ok(json!(ok)));
        }
        for ok in BREVITIES {
            assert_eq!(preference_value("brevity", &json!(ok)), Ok(json!(ok)));
        }
        assert!(preference_value("tone", &json!("sarcastic")).is_err());
        assert!(preference_value("brevity", &json!(3)).is_err());
        assert_eq!(preference_value("language", &json!("de")), Ok(json!("de")));
        assert!(preference_value("language", &json!(["de"])).is_err());
    }

    #[test]
    fn defaults_fill_only_what_is_unset() {
        assert_eq!(
            with_profile_defaults(&json!({"age": 3})),
            json!({"age": 3, "timezone": "UTC"})
        );
        assert_eq!(
            with_profile_defaults(&json!({"timezone": "Asia/Tokyo"})),
            json!({"timezone": "Asia/Tokyo"})
        );
        assert_eq!(
            with_preference_defaults(&json!({"tone": "direct", "x": "y"})),
            json!({"tone": "direct", "brevity": "medium", "x": "y"})
        );
    }
}
