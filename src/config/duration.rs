//! `*_ms` and `*_secs` settings are `Duration`s. A value is a whole number in
//! the key's unit, as it always was, or a duration with units (`"250ms"`,
//! `"5s"`, `"2m"`, `"1h 30m"`: humantime's syntax). It renders back as the
//! whole number, so `config check` and the reload report read as before and
//! their output loads again. Use with `#[serde(with = "millis")]` or `"secs"`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

#[derive(Clone, Copy)]
enum Unit {
    Millis,
    Secs,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Millis => "milliseconds",
            Unit::Secs => "seconds",
        }
    }

    fn of(self, n: u64) -> Duration {
        match self {
            Unit::Millis => Duration::from_millis(n),
            Unit::Secs => Duration::from_secs(n),
        }
    }

    fn nanos(self) -> u128 {
        match self {
            Unit::Millis => 1_000_000,
            Unit::Secs => 1_000_000_000,
        }
    }

    /// Whether `d` renders back to itself (no fraction of a unit).
    fn is_whole(self, d: Duration) -> bool {
        d.as_nanos() % self.nanos() == 0
    }

    fn serialize<S: Serializer>(self, d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos() / self.nanos()).unwrap_or(u64::MAX))
    }
}

struct DurationVisitor(Unit);

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a whole number of {} or a duration such as \"250ms\", \"5s\" or \"2m\"",
            self.0.name()
        )
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        Ok(self.0.of(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        u64::try_from(n)
            .map(|n| self.0.of(n))
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        let text = text.trim();
        if let Ok(n) = text.parse::<u64>() {
            return Ok(self.0.of(n));
        }
        let d = humantime::parse_duration(text)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))?;
        if !self.0.is_whole(d) {
            return Err(E::custom(format!(
                "{text:?} is not a whole number of {}",
                self.0.name()
            )));
        }
        Ok(d)
    }
}

pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        Unit::Millis.serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor(Unit::Millis))
    }
}

pub mod secs {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        Unit::Secs.serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor(Unit::Secs))
    }
}

/// What `set_from_env` may hand on as text for a key whose default is a
/// whole number: the field's type decides whether it takes units.
pub(super) fn has_units(text: &str) -> bool {
    humantime::parse_duration(text.trim()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct T {
        #[serde(with = "millis")]
        a_ms: Duration,
        #[serde(with = "secs")]
        b_secs: Duration,
    }

    fn parse(text: &str) -> Result<T, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_keep_their_unit_and_units_are_accepted() {
        let t = parse("a_ms = 250\nb_secs = 30").unwrap();
        assert_eq!(
            (t.a_ms, t.b_secs),
            (Duration::from_millis(250), Duration::from_secs(30))
        );
        let t = parse("a_ms = \"2m\"\nb_secs = \"5s\"").unwrap();
        assert_eq!(
            (t.a_ms, t.b_secs),
            (Duration::from_secs(120), Duration::from_secs(5))
        );
        let t = parse("a_ms = \"1.5s\"\nb_secs = \" 40 \"").unwrap();
        assert_eq!(
            (t.a_ms, t.b_secs),
            (Duration::from_millis(1500), Duration::from_secs(40))
        );
    }

    #[test]
    fn a_value_renders_as_the_whole_number_it_loads_from() {
        let t = parse("a_ms = \"250ms\"\nb_secs = \"2m\"").unwrap();
        let text = toml::to_string(&t).unwrap();
        assert_eq!(text, "a_ms = 250\nb_secs = 120\n");
        assert_eq!(parse(&text).unwrap(), t);
    }

    #[test]
    fn fractions_of_the_unit_negative_numbers_and_words_are_refused() {
        for (bad, says) in [
            ("a_ms = 1\nb_secs = \"250ms\"", "whole number of seconds"),
            (
                "a_ms = \"10us\"\nb_secs = 1",
                "whole number of milliseconds",
            ),
            ("a_ms = -1\nb_secs = 1", "a whole number of milliseconds"),
            ("a_ms = \"soon\"\nb_secs = 1", "such as \"250ms\""),
            ("a_ms = 1.5\nb_secs = 1", "a whole number of milliseconds"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
