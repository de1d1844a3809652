//! The kinds `llm.provider`, `llm.fallback_provider` and
//! `llm.embedding_provider` accept are their types: an unknown one fails the
//! load naming its key. Spellings are trimmed and case-insensitive; the
//! provider kinds are spelt as `ProviderKind` spells them.

use std::fmt;

use actors::llm::ProviderKind;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// `llm.provider`. `auto` (or empty) is resolved at load from the keys given
/// (`LlmSettings::resolve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatProvider {
    Auto,
    Kind(ProviderKind),
}

/// `llm.embedding_provider`. `auto` (or empty) is resolved at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingProvider {
    Auto,
    /// all-MiniLM-L6-v2 on this machine.
    Local,
    /// Character n-grams: no model. Also spelt `offline`.
    Hashed,
    OpenAi,
    OpenAiCompatible,
}

impl EmbeddingProvider {
    /// The hosted provider that embeds, if one does.
    pub fn remote(self) -> Option<ProviderKind> {
        match self {
            Self::OpenAi => Some(ProviderKind::OpenAi),
            Self::OpenAiCompatible => Some(ProviderKind::OpenAiCompatible),
            Self::Auto | Self::Local | Self::Hashed => None,
        }
    }
}

fn spelling<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(String::deserialize(d)?.trim().to_ascii_lowercase())
}

fn unknown<E: de::Error>(text: &str, expected: &str) -> E {
    E::custom(format!("{text:?} is not a provider: expected {expected}"))
}

impl<'de> Deserialize<'de> for ChatProvider {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = spelling(d)?;
        match text.as_str() {
            "" | "auto" => Ok(Self::Auto),
            _ => ProviderKind::parse(&text).map(Self::Kind).ok_or_else(|| {
                unknown(
                    &text,
                    "auto, offline, anthropic, openai or openai_compatible",
                )
            }),
        }
    }
}

impl<'de> Deserialize<'de> for EmbeddingProvider {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = spelling(d)?;
        match text.as_str() {
            "" | "auto" => Ok(Self::Auto),
            "local" => Ok(Self::Local),
            "hashed" | "offline" => Ok(Self::Hashed),
            _ => match ProviderKind::parse(&text) {
                Some(ProviderKind::OpenAi) => Ok(Self::OpenAi),
                Some(ProviderKind::OpenAiCompatible) => Ok(Self::OpenAiCompatible),
                _ => Err(unknown(
                    &text,
                    "auto, local, hashed, openai or openai_compatible",
                )),
            },
        }
    }
}

impl fmt::Display for ChatProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Kind(kind) => kind.name(),
        })
    }
}

impl fmt::Display for EmbeddingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Local => "local",
            Self::Hashed => "hashed",
            Self::OpenAi => ProviderKind::OpenAi.name(),
            Self::OpenAiCompatible => ProviderKind::OpenAiCompatible.name(),
        })
    }
}

impl Serialize for ChatProvider {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for EmbeddingProvider {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `llm.fallback_provider`: a provider kind, or empty for none.
pub mod fallback {
    use super::*;

    pub fn serialize<S: Serializer>(kind: &Option<ProviderKind>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.map_or("", ProviderKind::name))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ProviderKind>, D::Error> {
        let text = spelling(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        ProviderKind::parse(&text).map(Some).ok_or_else(|| {
            unknown(
                &text,
                "empty (none), offline, anthropic, openai or openai_compatible",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct T {
        chat: ChatProvider,
        #[serde(with = "fallback")]
        fallback: Option<ProviderKind>,
        embedding: EmbeddingProvider,
    }

    fn parse(chat: &str, fallback: &str, embedding: &str) -> Result<T, String> {
        let text = format!("chat = {chat:?}\nfallback = {fallback:?}\nembedding = {embedding:?}");
        toml::from_str(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn every_spelling_accepted_before_is_accepted() {
        for (text, kind) in [
            ("", ChatProvider::Auto),
            ("auto", ChatProvider::Auto),
            ("offline", ChatProvider::Kind(ProviderKind::Offline)),
            (" Anthropic ", ChatProvider::Kind(ProviderKind::Anthropic)),
            ("openai", ChatProvider::Kind(ProviderKind::OpenAi)),
            (
                "OPENAI_COMPATIBLE",
                ChatProvider::Kind(ProviderKind::OpenAiCompatible),
            ),
        ] {
            assert_eq!(parse(text, "", "").unwrap().chat, kind, "{text}");
        }
        for (text, kind) in [
            ("", None),
            ("offline", Some(ProviderKind::Offline)),
            ("Anthropic", Some(ProviderKind::Anthropic)),
            ("openai", Some(ProviderKind::OpenAi)),
            ("openai_compatible", Some(ProviderKind::OpenAiCompatible)),
        ] {
            assert_eq!(parse("", text, "").unwrap().fallback, kind, "{text}");
        }
        for (text, kind) in [
            ("", EmbeddingProvider::Auto),
            ("auto", EmbeddingProvider::Auto),
            ("local", EmbeddingProvider::Local),
            ("hashed", EmbeddingProvider::Hashed),
            ("offline", EmbeddingProvider::Hashed),
            ("OpenAI", EmbeddingProvider::OpenAi),
            ("openai_compatible", EmbeddingProvider::OpenAiCompatible),
        ] {
            assert_eq!(parse("", "", text).unwrap().embedding, kind, "{text}");
        }
    }

    #[test]
    fn an_unknown_kind_is_refused_with_the_accepted_ones() {
        for (chat, fallback, embedding, says) in [
            ("antropic", "", "", "auto, offline, anthropic"),
            ("", "auto", "", "empty (none), offline"),
            ("", "", "anthropic", "auto, local, hashed"),
            ("", "", "ollama", "auto, local, hashed"),
        ] {
            let e = parse(chat, fallback, embedding).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_kind_renders_as_its_spelling() {
        let t = parse("Anthropic", "openai_compatible", "offline").unwrap();
        assert_eq!(
            toml::to_string(&t).unwrap(),
            "chat = \"anthropic\"\nfallback = \"openai_compatible\"\nembedding = \"hashed\"\n"
        );
    }
}
