//! Property tests for the parsers in this crate: food bodies (JSON in,
//! validated entry out), dates and configuration values from the environment.

use chrono::Utc;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::config::Settings;
use crate::routes::food::{parse_day, LogFoodRequest};

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        Just(json!(null)),
        "\\PC{0,8}".prop_map(|s| json!(s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any JSON food body is either refused or becomes an entry whose
    /// numbers are all finite and within the documented bounds.
    #[test]
    fn food_bodies_become_bounded_entries_or_a_400(
        description in "\\PC{0,40}( banana| rice| butter)?",
        quantity in proptest::option::of("\\PC{0,20}|[0-9]{1,320}( g| kg)?"),
        calories in number(),
        protein in number(),
    ) {
        let body = json!({
            "description": description, "quantity": quantity,
            "calories": calories, "protein_g": protein,
        });
        let Ok(request) = serde_json::from_value::<LogFoodRequest>(body) else { return Ok(()) };
        if let Ok(entry) = request.into_entry(Utc::now()) {
            for v in [entry.grams, entry.calories, entry.protein_g, entry.carbs_g, entry.fat_g]
                .into_iter()
                .flatten()
            {
                prop_assert!(v.is_finite() && (0.0..=20_000.0).contains(&v), "{entry:?}");
            }
        }
    }

    #[test]
    fn dates_outside_1900_to_2100_never_parse(y in -20000i32..20000, m in 0u32..14, d in 0u32..33) {
        let text = format!("{y:04}-{m:02}-{d:02}");
        if let Ok(day) = parse_day(&text) {
            prop_assert!((1900..=2100).contains(&chrono::Datelike::year(&day)), "{text}");
        }
    }

    /// Configuration values from the environment: a whole number is taken
    /// as given or refused with the variable's name, never a panic.
    #[test]
    fn config_values_parse_or_name_the_variable(raw in "\\PC{0,12}|-?[0-9]{1,25}") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let env = vec![
            ("API_KEYS".to_string(), "k".to_string()),
            ("RATE_LIMIT_PER_MINUTE".to_string(), raw.clone()),
        ];
        match Settings::from_sources(&dir, env) {
            Ok(s) => prop_assert_eq!(i64::from(s.rate_limit.per_minute), raw.trim().parse::<i64>().unwrap()),
            Err(e) => prop_assert!(e.0.contains("RATE_LIMIT_PER_MINUTE") || e.0.contains("rate_limit.per_minute"), "{}", e.0),
        }
    }
}
