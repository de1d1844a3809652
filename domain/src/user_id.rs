//! `user_id`: an opaque string, 1–128 chars of `[A-Za-z0-9_.:@-]`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 128 {
            return Err(format!("must be 1 to 128 characters, got {}", raw.len()));
        }
        match raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')))
        {
            Some(c) => Err(format!(
                "may only contain A-Z a-z 0-9 _ . : @ -, found {c:?}"
            )),
            None => Ok(Self(raw.to_owned())),
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::UserId;

    #[test]
    fn an_email_like_id_is_accepted() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("tg:12345").is_ok());
    }

    #[test]
    fn empty_long_or_odd_ids_are_rejected() {
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("ü").is_err());
    }
}
