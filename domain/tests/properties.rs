//! Property tests for the parsers clients reach: quantities, times, zones.

use chrono::Timelike;
use domain::nutrition::{estimate_checked, MAX_GRAMS};
use domain::time::{parse_hhmm, parse_timezone};
use proptest::prelude::*;

const FOODS: &[&str] = &[
    "banana",
    "butter",
    "rice",
    "chicken breast",
    "olive oil",
    "milk",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the quantity text, an estimate is finite and within bounds,
    /// or refused; never a panic, never Infinity.
    #[test]
    fn quantities_give_finite_bounded_estimates_or_an_error(
        food in prop::sample::select(FOODS),
        quantity in prop_oneof![
            "[0-9]{1,400}( g| kg| cups| oz| lb)?",
            "-?[0-9]{0,5}\\.?[0-9]{0,5}(/[0-9]{1,3})? ?(g|kg|ml|l|cup|tbsp|tsp|slice|medium)?",
            "\\PC{0,100}",
        ],
        in_description in any::<bool>(),
    ) {
        let (description, quantity) = if in_description {
            (format!("{quantity} {food}"), None)
        } else {
            (food.to_string(), Some(quantity.as_str()))
        };
        if let Ok(Some(e)) = estimate_checked(&description, quantity) {
            for v in [e.grams, e.calories, e.protein_g, e.carbs_g, e.fat_g] {
                prop_assert!(v.is_finite() && v >= 0.0, "{e:?}");
            }
            prop_assert!(e.grams > 0.0 && e.grams <= MAX_GRAMS, "{e:?}");
        }
    }

    /// Every HH:MM in range parses to itself; anything else is refused.
    #[test]
    fn hhmm_parses_exactly_the_valid_times(h in 0u32..30, m in 0u32..70, pad in any::<bool>()) {
        let text = if pad { format!("{h:02}:{m:02}") } else { format!("{h}:{m:02}") };
        match parse_hhmm(&text) {
            Ok(t) => prop_assert!(h < 24 && m < 60 && t.hour() == h && t.minute() == m),
            Err(_) => prop_assert!(h >= 24 || m >= 60),
        }
    }

    #[test]
    fn arbitrary_time_text_never_panics(s in "\\PC{0,12}") {
        let _ = parse_hhmm(&s);
    }

    /// A zone's own name round-trips; arbitrary text is an error, not a panic.
    #[test]
    fn zones_round_trip_and_garbage_is_refused(
        tz in prop::sample::select(chrono_tz::TZ_VARIANTS.to_vec()),
        junk in "\\PC{0,40}",
    ) {
        prop_assert_eq!(parse_timezone(tz.name()).unwrap(), tz);
        if let Ok(z) = parse_timezone(&junk) {
            prop_assert_eq!(z.name(), junk.as_str());
        }
    }
}
